"""The GRIDS objective, its gradient-estimated gains and exact batched swap evaluation (DESIGN §5).

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

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..surrogate.model import SparseBatch, Surrogate, csr_to_batch

__all__ = ["CellSet", "SubsetObjective"]

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
    def cells(self, X: sp.spmatrix) -> CellSet:
        """Encode cells once; every later subset only touches the removed columns."""
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
        state = cis.reshape(*cis.shape[:-1], len(self.output), self.cis_width)
        contribution = self.model.cis_from_state(state, self.decode_genes)
        return self.model.genes_from_pooled(pooled, contribution, self.decode_genes).clamp_min(0.0)

    def subset(self, cells: CellSet, rows: np.ndarray) -> CellSet:
        """A subset of the cells (a training batch)."""
        X = cells.X[rows]
        index = torch.as_tensor(rows, device=self.device)
        batch = csr_to_batch(X, self._chrom_of_peak_np, self.model.n_chroms).to(self.device)
        return CellSet(X, X.tocsc(), batch, cells.pooled[index], cells.cis[index], cells.baseline[index])

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
        if cis.shape[-1] != self.cis_rows.shape[1]:
            raise ValueError(f"cis state has {cis.shape[-1]} columns, the objective reads {self.cis_rows.shape[1]} "
                             f"({len(self.output)} genes x {self.cis_width} sums)")
        shape = pooled.shape[:-2]
        flat_pooled = pooled.reshape(-1, *pooled.shape[-2:])
        flat_cis = cis.reshape(-1, cis.shape[-1])
        ratio = self.predict(flat_pooled, flat_cis).view(*shape, -1) / cells.baseline
        per_cell = ratio.index_select(-1, self.target_cols).square().sum(-1)
        if self.beta > 0 and len(self.other_cols):
            side = (ratio.index_select(-1, self.other_cols) - 1.0).square().sum(-1)
            per_cell = per_cell + self.beta / len(self.other_cols) * side
        return per_cell.mean(-1)

    @torch.no_grad()
    def loss(self, cells: CellSet, subset: np.ndarray) -> float:
        """L(r) on these cells."""
        if len(subset) == 0:
            return float(self.loss_from_state(cells, cells.pooled, cells.cis))
        pooled, cis = self.removal(cells, subset)
        return float(self.loss_from_state(cells, cells.pooled - pooled, cells.cis - cis))

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

    # ---- DESIGN §5 step 2: the gain of every peak in one backward pass ------------------------
    def gains(self, cells: CellSet, subset: np.ndarray) -> np.ndarray:
        """d_j = mean_cells G_j . (E[j, 0] - E[j, x_j]) for every peak: the first-order change of L
        from removing j, with G taken at x \\ r and x the original input (so d on r is the effect
        of keeping r removed)."""
        with torch.no_grad():
            if len(subset):
                pooled, cis = self.removal(cells, subset)
                pooled, cis = cells.pooled - pooled, cells.cis - cis
            else:
                pooled, cis = cells.pooled, cells.cis
        n_peaks = self.model.config.n_peaks
        mask = torch.zeros(n_peaks, device=self.device, dtype=self.dtype, requires_grad=True)
        cis = cis.clone().requires_grad_(True)
        # Removing peak j by an amount e_j takes e_j x_j D_j off its chromosome's pooled sum.
        perturbed_pooled = pooled - self.model.open_sums(cells.batch, mask.index_select(0, cells.batch.peaks))
        loss = self.loss_from_state(cells, perturbed_pooled, cis)
        pooled_gain, cis_gradient = torch.autograd.grad(loss, (mask, cis))
        gains = pooled_gain.cpu().numpy().astype(np.float64)
        # ... and e_j x_j W_gj off each sum of each nearby gene g: d_j -= sum_links W_gj sum_cells x_j dL/ds_g,
        # gathered per link (only genes the loss depends on), never as a peaks x genes matrix.
        if self.cis_rows.nnz:
            used = np.flatnonzero((cis_gradient.abs().sum(0) > 0).cpu().numpy())
            links = self.cis_columns[:, used].tocoo()
            if links.nnz:
                open_ = self._tensor(cells.X_columns[:, links.row].toarray())  # cells x links
                per_link = (open_ * cis_gradient[:, torch.as_tensor(used[links.col], device=self.device)]).sum(0)
                np.add.at(gains, links.row, -links.data * per_link.cpu().numpy())
        return gains

    # ---- DESIGN §5 step 4: exact evaluation of k swaps in one batched forward -----------------
    @torch.no_grad()
    def swap_losses(self, cells: CellSet, subset: np.ndarray, position: int, candidates: np.ndarray) -> np.ndarray:
        """L of the subset with ``subset[position]`` swapped for each candidate; entry 0 is the
        unchanged subset."""
        removed_pooled, removed_cis = self.removal(cells, subset)
        pooled, cis = cells.pooled - removed_pooled, cells.cis - removed_cis
        back_pooled, back_cis = self.removal(cells, subset[position : position + 1])
        cand_pooled, cand_cis = self._per_peak_removal(cells, candidates)  # k x cells x ...
        states_pooled = torch.cat([pooled.unsqueeze(0), (pooled + back_pooled).unsqueeze(0) - cand_pooled])
        states_cis = torch.cat([cis.unsqueeze(0), (cis + back_cis).unsqueeze(0) - cand_cis])
        return self.loss_from_state(cells, states_pooled, states_cis).cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def subset_losses(self, cells: CellSet, subsets: np.ndarray, chunk: int = 32) -> np.ndarray:
        """L of each row of ``subsets`` (m x L peak indices) on these cells, exactly, in batched
        forwards: each distinct peak's removal is computed once and summed per subset."""
        subsets = np.asarray(subsets, dtype=np.int64)
        peaks, inverse = np.unique(subsets, return_inverse=True)
        inverse = inverse.reshape(subsets.shape)
        per_pooled, per_cis = self._per_peak_removal(cells, peaks)  # u x cells x ...
        out = np.empty(len(subsets))
        for lo in range(0, len(subsets), chunk):
            rows = inverse[lo : lo + chunk]
            member = torch.zeros(len(rows), len(peaks), device=self.device, dtype=self.dtype)
            member[torch.arange(len(rows), device=self.device).repeat_interleave(rows.shape[1]),
                   torch.as_tensor(rows.ravel(), device=self.device)] = 1.0
            pooled = cells.pooled.unsqueeze(0) - torch.einsum("mu,ucrd->mcrd", member, per_pooled)
            cis = cells.cis.unsqueeze(0) - torch.einsum("mu,ucg->mcg", member, per_cis)
            out[lo : lo + chunk] = self.loss_from_state(cells, pooled, cis).cpu().numpy()
        return out

    def _per_peak_removal(self, cells: CellSet, peaks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Removal of each peak alone: (k, cells, C, d) and (k, cells, G)."""
        peaks = np.asarray(peaks, dtype=np.int64)
        open_ = self._tensor(cells.X_columns[:, peaks].toarray().T)  # k x cells
        index = torch.as_tensor(peaks, device=self.device)
        k, n = open_.shape
        pooled = torch.zeros(k, n, *cells.pooled.shape[1:], device=self.device, dtype=cells.pooled.dtype)
        rows = torch.arange(k, device=self.device)
        pooled[rows, :, self.chrom_of_peak[index], :] = open_.unsqueeze(-1) * self.delta[index].unsqueeze(1)
        cis = open_.unsqueeze(-1) * self._tensor(self.cis_rows[peaks].toarray()).unsqueeze(1)
        return pooled, cis
