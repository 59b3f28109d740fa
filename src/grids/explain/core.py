"""The GRIDS objective, its gradient-estimated gains and exact batched swap evaluation (docs/architecture.md §5).

Removal perturbation (p = 0): a subset r of peaks is closed in every cell. The surrogate's
encoder is linear in the open peaks, so for a set of cells

    pooled(x \\ r) = pooled(x) - sum_{j in r, x_j = 1} D_j   (in chromosome c(j))
    s(x \\ r)      = s(x)      - sum_{j in r, x_j = 1} W_.j   (every sum of the cis state)

and a subset is scored without re-encoding the cells: only the L removed columns are touched.
The cis state holds, per output gene, the linear sum and the saturating sums of the surrogate's
cis path (``1 + cis_units`` columns per gene, gene-major); the nonlinearity is applied after
the removal, so a removal is still exact.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from ..surrogate.model import SparseBatch, Surrogate, csr_to_batch

__all__ = ["CellSet", "SubsetObjective"]

BATCHES_KEPT = 4  # training batches a cell set keeps for the other targets of a lockstep search
BASELINE_FLOOR = 1e-3  # y = F(x) floored here, so a ratio stays finite for a gene the model puts at 0


@dataclass
class CellSet:
    """Cells of one cell type as the explainer sees them: the binary matrix and its encoding."""

    X: sp.csr_matrix  # cells x peaks
    X_columns: sp.csc_matrix  # the same, for fast column access
    batch: SparseBatch
    pooled: torch.Tensor  # cells x chromosomes x d_h, unperturbed
    cis: torch.Tensor  # cells x (output genes x cis sums), the unperturbed cis state
    baseline: torch.Tensor  # F(x) floored at BASELINE_FLOOR (cells x genes)
    # Shared by every objective's view of these cells (targets of one cell type): their training
    # batches and the gains' sparse matrix, built once for all targets that ask in lockstep.
    cache: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return self.X.shape[0]


class SubsetObjective:
    """L(r) = mean_cells[sum_{i in T} (F(x\\r)_i / y_i)^2 + beta/(G - |T|) sum_{j not in T} (F(x\\r)_j / y_j - 1)^2]."""

    def __init__(self, model: Surrogate, genes: np.ndarray, beta: float = 0.0) -> None:
        self.model = model.eval()
        self.device = model.embed_open.device
        self.dtype = model.embed_open.dtype
        self.beta = float(beta)
        n_genes = model.config.n_genes
        genes = np.asarray(genes, dtype=np.int64)
        # The genes the objective reads: the targets alone when beta = 0, else all of them.
        # Cell states (cis term, baseline) are kept for these columns only.
        self.output = genes if self.beta == 0 else np.arange(n_genes)
        self.decode_genes = torch.as_tensor(genes, device=self.device) if self.beta == 0 else None
        position = {g: i for i, g in enumerate(self.output)}
        self.target_cols = torch.as_tensor([position[g] for g in genes], device=self.device)
        self.other_cols = torch.as_tensor(np.setdiff1d(np.arange(len(self.output)), self.target_cols.cpu().numpy()),
                                          device=self.device)
        width = model.config.cis_state_width
        self.cis_width = width
        self.delta = model.embedding_delta.detach()
        # The cis path as peaks x (genes x sums): a removed peak's row is what it adds to each sum.
        cis = model.cis_matrix()
        self.cis_rows = cis[:, (self.output[:, None] * width + np.arange(width)).ravel()].tocsr()
        self.cis_columns = self.cis_rows.tocsc()
        links = self.cis_rows.tocoo()
        self.link_peak = torch.as_tensor(links.row.astype(np.int64), device=self.device)
        self.link_col = torch.as_tensor(links.col.astype(np.int64), device=self.device)
        self.link_weight = torch.as_tensor(links.data, device=self.device, dtype=self.dtype)
        self.chrom_of_peak = model.chrom_of_peak
        self._chrom_of_peak_np = model.chrom_of_peak.cpu().numpy()  # for csr_to_batch, once

    @property
    def n_features(self) -> int:
        """Peaks a subset is drawn from."""
        return self.model.config.n_peaks

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device, dtype=self.dtype)

    # ---- cells --------------------------------------------------------------------------------
    @torch.no_grad()
    def cells(self, X: sp.spmatrix, *, shared: CellSet | None = None) -> CellSet:
        """Encode cells once; every later subset only touches the removed columns. ``shared``:
        the same cells as another objective on this surrogate encoded them (their matrix and
        pooled sums are reused; only this objective's cis state and baseline are computed)."""
        if shared is not None:
            X, batch, pooled = shared.X, shared.batch, shared.pooled
            cis = self._tensor((X @ self.cis_rows).toarray())
            return CellSet(X, shared.X_columns, batch, pooled, cis, self.predict(pooled, cis).clamp_min(BASELINE_FLOOR),
                           shared.cache)
        X = sp.csr_matrix(X, dtype=np.float32)
        batch = csr_to_batch(X, self._chrom_of_peak_np, self.model.n_chroms).to(self.device)
        pooled = self.model.pooled(batch)
        # The cis state of the output genes only, as one sparse product (not the model's per-entry
        # expansion over every gene's links).
        cis = self._tensor((X @ self.cis_rows).toarray())
        baseline = self.predict(pooled, cis).clamp_min(BASELINE_FLOOR)
        return CellSet(X, X.tocsc(), batch, pooled, cis, baseline)

    def weighted_removal(self, cells: CellSet, entry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled and cis (output columns) taken away when each open entry of the cells is
        removed by the amount ``entry`` (differentiable; a soft mask for FIMAP)."""
        pooled = self.model.open_sums(cells.batch, entry)
        cis = torch.zeros(cells.n_cells, self.cis_rows.shape[1], device=self.device, dtype=self.dtype)
        if len(self.link_peak):
            # Per cis link: the peak's amount in each cell (0 where it is closed) times its weight.
            weight = self.mask_of_entries(cells, entry).index_select(1, self.link_peak) * self.link_weight
            cis = cis.index_add(1, self.link_col, weight)
        return pooled, cis

    def mask_of_entries(self, cells: CellSet, entry: torch.Tensor) -> torch.Tensor:
        """Per-entry amounts back on the (cells x peaks) grid, as dense rows of the batch."""
        grid = torch.zeros(cells.n_cells, self.model.config.n_peaks, device=self.device, dtype=entry.dtype)
        return grid.index_put((cells.batch.cells, cells.batch.peaks), entry)

    def predict(self, pooled: torch.Tensor, cis: torch.Tensor) -> torch.Tensor:
        """F for the objective's output genes, clamped at 0, from pooled sums (cells x C x d) and
        the cis state of those genes (cells x outputs * sums)."""
        return self.predict_from_hidden(self.model.decoder_hidden(pooled), cis)

    def predict_from_hidden(self, hidden: torch.Tensor, cis: torch.Tensor) -> torch.Tensor:
        """:meth:`predict` from the decoder's shared hidden layer (rows x hidden)."""
        state = cis.reshape(*cis.shape[:-1], len(self.output), self.cis_width)
        contribution = self.model.cis_from_state(state, self.decode_genes)
        return self.model.genes_from_hidden(hidden, contribution, self.decode_genes).clamp_min(0.0)

    def subset(self, cells: CellSet, rows: np.ndarray) -> CellSet:
        """A subset of the cells (a training batch)."""
        rows = np.asarray(rows, dtype=np.int64)
        index = torch.as_tensor(rows, device=self.device)
        # Targets searching in lockstep with one seed draw the same batch at the same step: its
        # matrix, encoding and cache are made once (the last few batches are kept).
        made = cells.cache.setdefault("batches", OrderedDict())
        key = rows.tobytes()
        if key not in made:
            X = cells.X[rows]
            batch = csr_to_batch(X, self._chrom_of_peak_np, self.model.n_chroms).to(self.device)
            made[key] = (X, X.tocsc(), batch, cells.pooled[index], {})
            if len(made) > BATCHES_KEPT:
                made.popitem(last=False)
        made.move_to_end(key)
        X, X_columns, batch, pooled, cache = made[key]
        return CellSet(X, X_columns, batch, pooled, cells.cis[index], cells.baseline[index], cache)

    # ---- perturbations ------------------------------------------------------------------------
    def removal(self, cells: CellSet, peaks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """What removing ``peaks`` takes away from each cell's pooled sums and cis term."""
        peaks = np.asarray(peaks, dtype=np.int64)
        open_ = self._tensor(cells.X_columns[:, peaks].toarray())  # cells x m
        index = torch.as_tensor(peaks, device=self.device)
        pooled = torch.zeros_like(cells.pooled).index_add_(
            1, self.chrom_of_peak[index], open_.unsqueeze(-1) * self.delta[index].unsqueeze(0))
        cis = open_ @ self._tensor(self.cis_rows[peaks].toarray())
        return pooled, cis

    def loss_from_state(self, cells: CellSet, pooled: torch.Tensor, cis: torch.Tensor) -> torch.Tensor:
        """L per leading index: pooled is (..., cells, C, d), cis (..., cells, outputs); mean over cells."""
        return losses_of_states([(self, cells, pooled, cis)])[0]

    def loss_from_prediction(self, cells: CellSet, predicted: torch.Tensor) -> torch.Tensor:
        """L per leading index from predictions (..., cells, outputs); mean over cells."""
        return self.per_cell_terms(predicted, cells.baseline).mean(-1)

    def per_cell_terms(self, predicted: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
        """Each cell's term of L (L is their mean) from its predictions and baseline (..., outputs)."""
        ratio = predicted / baseline
        per_cell = ratio.index_select(-1, self.target_cols).square().sum(-1)
        if self.beta > 0 and len(self.other_cols):
            side = (ratio.index_select(-1, self.other_cols) - 1.0).square().sum(-1)
            per_cell = per_cell + self.beta / len(self.other_cols) * side
        return per_cell

    def _check_cis_width(self, cis: torch.Tensor) -> None:
        if cis.shape[-1] != self.cis_rows.shape[1]:
            raise ValueError(f"cis state has {cis.shape[-1]} columns, the objective reads {self.cis_rows.shape[1]} "
                             f"({len(self.output)} genes x {self.cis_width} sums)")

    # ---- the objective of subsets: each method answers one request, answer_many answers many ----
    # The search asks these five questions (grids.explain.search.Ask). answer_many answers many
    # targets' questions of one kind at once: their states go through the decoder's shared
    # layers in one pass (the bulk of the cost), then each target's own output genes.
    def loss(self, cells: CellSet, subset: np.ndarray) -> float:
        """L(r) on these cells."""
        return SubsetObjective.answer_many("loss", [(self, cells, (subset,))])[0]

    def gains(self, cells: CellSet, subset: np.ndarray) -> np.ndarray:
        """d_j = mean_cells G_j . (E[j, 0] - E[j, x_j]) for every peak: the first-order change of L
        from removing j, with G taken at x \\ r and x the original input (so d on r is the effect
        of keeping r removed; docs/architecture.md §5 step 2, one backward pass)."""
        return SubsetObjective.answer_many("gains", [(self, cells, (subset,))])[0]

    def swap_losses(self, cells: CellSet, subset: np.ndarray, position: int, candidates: np.ndarray) -> np.ndarray:
        """L of the subset with ``subset[position]`` swapped for each candidate; entry 0 is the
        unchanged subset (docs/architecture.md §5 step 4: exact, in one batched forward)."""
        return SubsetObjective.answer_many("swap_losses", [(self, cells, (subset, position, candidates))])[0]

    def put_back_losses(self, cells: CellSet, subset: np.ndarray) -> np.ndarray:
        """[L(r), L(r \\ {r_1}), ..., L(r \\ {r_L})]: the objective with each member alone put back
        (leave-one-out scores, sufficiency of window peaks), decoding only the cells in which that
        member is open."""
        return SubsetObjective.answer_many("put_back_losses", [(self, cells, (subset,))])[0]

    def subset_losses(self, cells: CellSet, subsets: np.ndarray) -> np.ndarray:
        """L of each row of ``subsets`` (m x L peak indices) on these cells, exactly, decoding for
        each row only the cells it changes against the peaks most rows share."""
        return SubsetObjective.answer_many("subset_losses", [(self, cells, (subsets,))])[0]

    @property
    def batch_key(self) -> int:
        """Objectives with equal keys can answer their requests together (:meth:`answer_many`)."""
        return id(self.model)

    @staticmethod
    def answer_many(name: str, requests: Sequence[tuple[SubsetObjective, CellSet, tuple]]) -> list:
        """Answer ``name`` ("loss", "gains", "swap_losses", "subset_losses" or "put_back_losses") for each request
        (objective, cells, arguments); the objectives share one surrogate. The answers equal the
        one-at-a-time ones up to float rounding of the larger products."""
        if name == "gains":
            return _gains_many(requests)
        with torch.no_grad():
            blocks = (block for index, (objective, cells, args) in enumerate(requests)
                      for block in _state_blocks(name, index, objective, cells, args))
            per_request = _stream_losses(blocks, len(requests))
        if name == "loss":
            return [float(losses[0]) for losses in per_request]
        return [losses.cpu().numpy().astype(np.float64) for losses in per_request]

    @torch.no_grad()
    def relative_change(self, cells: CellSet, subset: np.ndarray) -> float:
        """The evaluation's Rel Δ of the targets on these cells: per target gene, the change of
        its cell mean on the natural scale relative to the mean before, averaged over targets."""
        before = self.predict(cells.pooled, cells.cis).index_select(-1, self.target_cols)
        pooled, cis = self.removal(cells, np.asarray(subset, dtype=np.int64))
        after = self.predict(cells.pooled - pooled, cells.cis - cis).index_select(-1, self.target_cols)
        mean_before = torch.expm1(before.double()).mean(0)
        change = torch.expm1(after.double()).mean(0) - mean_before
        valid = mean_before > 0
        return float((change[valid] / mean_before[valid]).mean()) if bool(valid.any()) else float("nan")

    def _pooled_gains(self, cells: CellSet, pooled_gradient: torch.Tensor) -> torch.Tensor:
        """The pooled sums' part of every peak's gain: removing e_j x_j takes e_j x_j D_j off its
        chromosome's sum, so d_j = -sum_cells x_j D_j . dL/dpooled[cell, c(j)], one dot product
        per open entry (not the encoder's backward pass over all peaks)."""
        columns = cells.X_columns  # peak j's open cells: indices[indptr[j]:indptr[j + 1]]
        width = pooled_gradient.shape[2]
        if columns.nnz == 0:
            return torch.zeros(self.n_features, device=self.device, dtype=pooled_gradient.dtype)
        # S[j, cell * C + c(j)] = x_j in that cell, so (S @ G)_j = sum_cells x_j dL/dpooled[cell, c(j)].
        opened = cells.cache.get("gains_matrix")
        if opened is None or opened.dtype != pooled_gradient.dtype:
            opened = cells.cache["gains_matrix"] = self._gains_matrix(cells, pooled_gradient.dtype)
        summed = torch.sparse.mm(opened, pooled_gradient.reshape(-1, width))  # peaks x d
        return (summed * self.delta).sum(-1).neg()

    def _gains_matrix(self, cells: CellSet, dtype: torch.dtype) -> torch.Tensor:
        """S of :meth:`_pooled_gains` for these cells, as a sparse CSR tensor."""
        columns = cells.X_columns
        n_chroms = self.model.n_chroms
        chrom = np.repeat(self._chrom_of_peak_np, np.diff(columns.indptr))
        with warnings.catch_warnings():  # torch calls its CSR support beta; the product is exact
            warnings.simplefilter("ignore", UserWarning)
            opened = torch.sparse_csr_tensor(
                torch.as_tensor(columns.indptr.astype(np.int64)),
                torch.as_tensor(columns.indices.astype(np.int64) * n_chroms + chrom),
                torch.ones(columns.nnz, dtype=dtype), size=(self.n_features, cells.n_cells * n_chroms),
            ).to(self.device)
        return opened

    def _gains_with_cis(self, cells: CellSet, pooled_gain: torch.Tensor, cis_gradient: torch.Tensor) -> np.ndarray:
        """The gains from the mask's gradient through the pooled sums plus the cis path's part:
        removing e_j x_j takes e_j x_j W_gj off each sum of each nearby gene g, so
        d_j -= sum_links W_gj sum_cells x_j dL/ds_g, gathered per link (only genes the loss depends
        on), never as a peaks x genes matrix."""
        gains = pooled_gain.cpu().numpy().astype(np.float64)
        if self.cis_rows.nnz:
            used = np.flatnonzero((cis_gradient.abs().sum(0) > 0).cpu().numpy())
            links = self.cis_columns[:, used].tocoo()
            if links.nnz:
                open_ = self._tensor(cells.X_columns[:, links.row].toarray())  # cells x links
                per_link = (open_ * cis_gradient[:, torch.as_tensor(used[links.col], device=self.device)]).sum(0)
                np.add.at(gains, links.row, -links.data * per_link.cpu().numpy())
        return gains


# ---- batched answers -----------------------------------------------------------------------------
MAX_DECODER_ROWS = 1 << 15  # states per pass through the decoder's shared layers (bounds memory)


def losses_of_states(
    items: Sequence[tuple[SubsetObjective, CellSet, torch.Tensor, torch.Tensor]]
) -> list[torch.Tensor]:
    """L of stacked states for several objectives on one surrogate: item (objective, cells,
    pooled (..., cells, C, d), cis (..., cells, outputs)) gives L per leading index. The decoder's
    shared layers run once over every item's states; each objective then reads its own genes."""
    for objective, _, _, cis in items:
        objective._check_cis_width(cis)
    predicted = _predictions([(objective, pooled, cis) for objective, _, pooled, cis in items])
    return [objective.loss_from_prediction(cells, prediction)
            for (objective, cells, _, _), prediction in zip(items, predicted)]


def _predictions(items: Sequence[tuple[SubsetObjective, torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Each item's predictions (..., outputs) from its states, pooled (..., C, d) and cis
    (..., outputs * sums): one pass through the decoder's shared layers for all of them, then
    each objective's own genes."""
    flat = [pooled.reshape(-1, *pooled.shape[-2:]) for _, pooled, _ in items]
    hidden = items[0][0].model.decoder_hidden(flat[0] if len(flat) == 1 else torch.cat(flat))
    out, lo = [], 0
    for (objective, pooled, cis), rows in zip(items, flat):
        predicted = objective.predict_from_hidden(hidden[lo : lo + len(rows)], cis.reshape(-1, cis.shape[-1]))
        lo += len(rows)
        out.append(predicted.view(*pooled.shape[:-2], -1))
    return out


@dataclass
class _RowBlock:
    """States of some cells to pass through the decoder, and how their per-cell terms of L
    become the losses a request asked for."""

    request: int
    objective: SubsetObjective
    pooled: torch.Tensor  # rows x C x d
    cis: torch.Tensor  # rows x outputs * sums
    baseline: torch.Tensor  # rows x outputs
    finish: Callable[[torch.Tensor], torch.Tensor]  # per-row terms -> this block's losses


def _stream_losses(blocks, n_requests: int) -> list[torch.Tensor]:
    """Losses of row blocks, passed through the decoder's shared layers in groups of about
    MAX_DECODER_ROWS rows; per request, its blocks' losses in order."""
    found: list[list[torch.Tensor]] = [[] for _ in range(n_requests)]
    group: list[_RowBlock] = []
    rows = 0

    def flush() -> None:
        predicted = _predictions([(block.objective, block.pooled, block.cis) for block in group])
        for block, prediction in zip(group, predicted):
            terms = block.objective.per_cell_terms(prediction, block.baseline)
            found[block.request].append(block.finish(terms).reshape(-1))
        group.clear()

    for block in blocks:
        group.append(block)
        rows += len(block.pooled)
        if rows >= MAX_DECODER_ROWS:
            flush()
            rows = 0
    if group:
        flush()
    return [torch.cat(losses) for losses in found]


def _mean_over_cells(terms: torch.Tensor) -> torch.Tensor:
    return terms.mean(-1)


def _state_blocks(name: str, index: int, objective: SubsetObjective, cells: CellSet, args: tuple):
    """The row blocks a request is scored on."""
    if name == "loss":
        (subset,) = args
        if len(subset) == 0:
            pooled, cis = cells.pooled, cells.cis
        else:
            removed_pooled, removed_cis = objective.removal(cells, subset)
            pooled, cis = cells.pooled - removed_pooled, cells.cis - removed_cis
        yield _RowBlock(index, objective, pooled, cis, cells.baseline, _mean_over_cells)
    elif name == "swap_losses":
        subset, position, candidates = args
        subset = np.asarray(subset, dtype=np.int64)
        options = np.repeat(subset[None, :], len(candidates) + 1, axis=0)
        options[1:, position] = candidates
        yield from _subset_blocks(index, objective, cells, options)
    elif name == "subset_losses":
        (subsets,) = args
        yield from _subset_blocks(index, objective, cells, np.asarray(subsets, dtype=np.int64))
    elif name == "put_back_losses":
        (subset,) = args
        subset = np.asarray(subset, dtype=np.int64)
        empty = np.zeros(0, dtype=np.int64)
        yield from _delta_blocks(index, objective, cells, subset,
                                 [(empty, empty)] + [(empty, subset[i : i + 1]) for i in range(len(subset))])
    else:
        raise ValueError(f"unknown objective request {name!r}")


def _subset_blocks(index: int, objective: SubsetObjective, cells: CellSet, subsets: np.ndarray):
    """Row blocks giving L of each row of ``subsets`` (m x L) exactly (:func:`_delta_blocks`),
    against the reference R of the peaks in more than half of the rows: for the k swaps at one
    position, r without that member; for leave-one-out rows, r."""
    m = len(subsets)
    peaks, counts = np.unique(subsets, return_counts=True)
    reference = peaks[counts * 2 > m]
    in_reference = np.zeros(objective.n_features, dtype=bool)
    in_reference[reference] = True
    differences = []
    for row in subsets.tolist():  # rows are short: Python sets beat numpy's set routines here
        in_row = set(row)
        differences.append((np.array(sorted(j for j in in_row if not in_reference[j]), dtype=np.int64),
                            np.array([j for j in reference.tolist() if j not in in_row], dtype=np.int64)))
    yield from _delta_blocks(index, objective, cells, reference, differences)


def _delta_blocks(index: int, objective: SubsetObjective, cells: CellSet, reference: np.ndarray,
                  differences: list[tuple[np.ndarray, np.ndarray]]):
    """Row blocks giving, exactly, L of each subset R + A_i - B_i for (A_i, B_i) in
    ``differences``, touching only the cells that differ from the reference subset R.

    A cell in which no peak of A_i or B_i is open has R's state, so only the other cells are
    decoded: L_i = (sum_cells t_R - sum_changed t_R + sum_changed t_i) / n, t the per-cell terms.
    """
    n = cells.n_cells
    if len(reference):
        removed_pooled, removed_cis = objective.removal(cells, reference)
        ref_pooled, ref_cis = cells.pooled - removed_pooled, cells.cis - removed_cis
    else:
        ref_pooled, ref_cis = cells.pooled, cells.cis
    columns = cells.X_columns
    # Per subset: the cells that change and the (changed cell, peak, sign) entries that change them.
    plans = []
    for added, put_back in differences:
        differ = np.concatenate([added, put_back]).astype(np.int64)
        open_rows = [columns.indices[columns.indptr[j] : columns.indptr[j + 1]] for j in differ]
        counts = [len(r) for r in open_rows]
        entry_cell = np.concatenate(open_rows) if open_rows else np.zeros(0, dtype=np.int64)
        # One differing peak (a swap, a put-back): its open cells are already sorted and distinct.
        changed = (open_rows[0] if len(open_rows) == 1 else np.unique(entry_cell)).astype(np.int64)
        entry_sign = np.repeat(np.concatenate([np.full(len(added), -1.0), np.full(len(put_back), 1.0)]), counts)
        plans.append((changed, np.searchsorted(changed, entry_cell), np.repeat(differ, counts), entry_sign))
    shared: dict[str, torch.Tensor] = {}
    first, lo = True, 0
    while lo < len(plans) or first:
        hi, rows = lo, n if first else 0
        while hi < len(plans) and (hi == lo or rows + len(plans[hi][0]) <= MAX_DECODER_ROWS):
            rows += len(plans[hi][0])
            hi += 1
        yield _delta_block(index, objective, cells, ref_pooled, ref_cis, plans[lo:hi], shared, include_reference=first)
        first, lo = False, hi


def _delta_block(index: int, objective: SubsetObjective, cells: CellSet, ref_pooled: torch.Tensor,
                 ref_cis: torch.Tensor, plans: list, shared: dict, include_reference: bool) -> _RowBlock:
    """One block of :func:`_delta_blocks`: the changed cells of some rows (after the reference's
    cells when ``include_reference``), with the finishing step that turns their terms into L."""
    device = objective.device
    sizes = [len(plan[0]) for plan in plans]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    cell_of_row = np.concatenate([plan[0] for plan in plans]) if plans else np.zeros(0, dtype=np.int64)
    row_of_entry = np.concatenate([plan[1] + offset for plan, offset in zip(plans, offsets)]) if plans else \
        np.zeros(0, dtype=np.int64)
    entry_peak = np.concatenate([plan[2] for plan in plans]).astype(np.int64) if plans else np.zeros(0, dtype=np.int64)
    entry_sign = np.concatenate([plan[3] for plan in plans]) if plans else np.zeros(0)
    rows = torch.as_tensor(cell_of_row, device=device)
    pooled = ref_pooled.index_select(0, rows)
    cis = ref_cis.index_select(0, rows)
    if len(entry_peak):
        unique_peaks, inverse = np.unique(entry_peak, return_inverse=True)
        row_index = torch.as_tensor(row_of_entry, device=device)
        sign = objective._tensor(entry_sign).unsqueeze(1)
        peak_index = torch.as_tensor(entry_peak, device=device)
        pooled = pooled.index_put((row_index, objective.chrom_of_peak.index_select(0, peak_index)),
                                  sign * objective.delta.index_select(0, peak_index), accumulate=True)
        peak_cis = objective._tensor(objective.cis_rows[unique_peaks].toarray())
        cis = cis.index_add(0, row_index, sign * peak_cis.index_select(0, torch.as_tensor(inverse, device=device)))
    baseline = cells.baseline.index_select(0, rows)
    if include_reference:
        pooled, cis = torch.cat([ref_pooled, pooled]), torch.cat([ref_cis, cis])
        baseline = torch.cat([cells.baseline, baseline])
    option_of_row = torch.as_tensor(np.repeat(np.arange(len(plans)), sizes), device=device)
    n = cells.n_cells

    def finish(terms: torch.Tensor) -> torch.Tensor:
        terms = terms.double()
        if include_reference:
            shared["reference"], terms = terms[:n], terms[n:]
            shared["total"] = shared["reference"].sum()
        zeros = torch.zeros(len(plans), device=device, dtype=torch.float64)
        new = zeros.index_add(0, option_of_row, terms)
        old = zeros.index_add(0, option_of_row, shared["reference"].index_select(0, rows))
        return (shared["total"] - old + new) / n

    return _RowBlock(index, objective, pooled, cis, baseline, finish)


def _gains_many(requests: Sequence[tuple[SubsetObjective, CellSet, tuple]]) -> list[np.ndarray]:
    """:meth:`SubsetObjective.gains` for each request, one backward pass per group of requests
    (the targets' losses are summed: each mask's gradient is its own target's)."""
    out: list[np.ndarray] = []
    start = 0
    while start < len(requests):
        stop, rows = start, 0
        while stop < len(requests) and (stop == start or rows + requests[stop][1].n_cells <= MAX_DECODER_ROWS):
            rows += requests[stop][1].n_cells
            stop += 1
        items, leaves = [], []
        for objective, cells, (subset,) in requests[start:stop]:
            with torch.no_grad():
                if len(subset):
                    pooled, cis = objective.removal(cells, subset)
                    pooled, cis = cells.pooled - pooled, cells.cis - cis
                else:
                    pooled, cis = cells.pooled, cells.cis
            pooled = pooled.clone().requires_grad_(True)
            cis = cis.clone().requires_grad_(True)
            items.append((objective, cells, pooled, cis))
            leaves += [pooled, cis]
        losses = losses_of_states(items)
        gradients = torch.autograd.grad(losses[0] if len(losses) == 1 else torch.stack(losses).sum(), leaves)
        for (objective, cells, _, _), pooled_gradient, cis_gradient in zip(items, gradients[::2], gradients[1::2]):
            out.append(objective._gains_with_cis(cells, objective._pooled_gains(cells, pooled_gradient), cis_gradient))
        start = stop
    return out
