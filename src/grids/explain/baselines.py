"""The paper's baselines with GRIDS's interface: each returns a ranked :class:`Selection` of up to
L peaks. None depends on L beyond where it cuts its ranking, so callers run each once with the
largest L and take the first L for smaller ones.

Random, Saliency, SmoothGrad and FIMAP work on the same objective as GRIDS; the peak–gene
correlation peer works on the observed data as ArchR/Signac do; SAGE (``sage-importance``) and
LIME (``lime``) explain the surrogate's target prediction over the peaks near the target genes
and refuse, with a reason, when that set is larger than ``max_features``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..surrogate.data import cis_links
from .core import CellSet, SubsetObjective
from .search import Selection, check_subset_size, open_candidates

__all__ = ["NotRun", "random_selection", "saliency", "smoothgrad", "fimap", "correlation", "sage_selection",
           "lime_selection", "window_peaks"]

log = logging.getLogger(__name__)


class NotRun(Exception):
    """A method cannot run on this problem; the message says why (it goes into the output)."""


def _top(scores: np.ndarray, candidates: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """The L candidates with the highest scores (one per candidate), best first (ties broken by
    peak index)."""
    order = np.lexsort((candidates, -scores))[:L]
    return candidates[order], scores[order]


def _selection(objective: SubsetObjective, train: CellSet, peaks: np.ndarray, scores: np.ndarray) -> Selection:
    return Selection(peaks, scores, objective.loss(train, peaks))


def random_selection(objective: SubsetObjective, train: CellSet, L: int, *, seed: int) -> Selection:
    """L peaks drawn uniformly from those open in the cells (seeded); score 0.

    Parameters
    ----------
    objective
        The objective of the targets (gives the selection's loss).
    train
        The training cells.
    L
        The subset size.
    seed
        Seed of the draw.

    Returns
    -------
    Selection
        L peaks in the order drawn, scores 0, and the objective with them removed on ``train``.

    Raises
    ------
    ValueError
        When L exceeds the peaks open in the cells.
    """
    candidates = open_candidates(train)
    check_subset_size(candidates, L)
    peaks = np.random.default_rng(seed).choice(candidates, size=L, replace=False)
    return _selection(objective, train, peaks, np.zeros(L))


def saliency(objective: SubsetObjective, train: CellSet, L: int) -> Selection:
    """Gradient x input: the L peaks whose removal the gradient says lowers the objective most
    (mean over the cells of d_j at r = {}).

    Parameters
    ----------
    objective
        The objective of the targets.
    train
        The training cells.
    L
        The subset size.

    Returns
    -------
    Selection
        L peaks, best first (ties by peak index); scores are the negated gains; the loss is the
        objective with them removed on ``train``.

    Raises
    ------
    ValueError
        When L exceeds the peaks open in the cells.
    """
    candidates = open_candidates(train)
    check_subset_size(candidates, L)
    peaks, scores = _top(-objective.gains(train, np.array([], dtype=np.int64))[candidates], candidates, L)
    return _selection(objective, train, peaks, scores)


def smoothgrad(objective: SubsetObjective, train: CellSet, L: int, *, seed: int, samples: int = 20,
               noise: float = 0.1) -> Selection:
    """Saliency averaged over noisy copies of the input. The input is binary, so the noise closes
    a random ``noise`` share of each cell's open peaks (the baseline prediction stays that of
    the real cells).

    Parameters
    ----------
    objective
        The objective of the targets.
    train
        The training cells.
    L
        The subset size.
    seed
        Seed of the noise.
    samples
        Number of noisy copies averaged.
    noise
        Share of each copy's open entries closed.

    Returns
    -------
    Selection
        L peaks, best first (ties by peak index); scores are the negated mean gains; the loss is the
        objective with them removed on ``train``.

    Raises
    ------
    ValueError
        When L exceeds the peaks open in the cells.
    """
    candidates = open_candidates(train)
    check_subset_size(candidates, L)
    rng = np.random.default_rng(seed)
    total = np.zeros(objective.model.config.n_peaks)
    for _ in range(samples):
        X = train.X.copy()
        X.data[rng.random(len(X.data)) < noise] = 0
        X.eliminate_zeros()
        noisy = objective.cells(X)
        noisy.baseline = train.baseline
        total += objective.gains(noisy, np.array([], dtype=np.int64))
    peaks, scores = _top(-total[candidates] / samples, candidates, L)
    return _selection(objective, train, peaks, scores)


def fimap(objective: SubsetObjective, train: CellSet, L: int, *, seed: int, steps: int = 200,
          batch_size: int = 64, sparsity: float = 0.05, learning_rate: float = 0.1) -> Selection:
    """A learned minimal adversarial perturbation (after Chapman-Rounds et al. 2021): a removal
    mask m in [0, 1] over the open peaks minimising L(x ⊙ (1 - m)) + sparsity * sum(m); the L
    peaks with the largest mask values.

    Parameters
    ----------
    objective
        The objective of the targets.
    train
        The training cells.
    L
        The subset size.
    seed
        Seed of the mask's start and of the cell batches.
    steps
        Adam steps on the mask.
    batch_size
        Cells per step (all cells when there are fewer).
    sparsity
        Weight of the mask's sum in the loss.
    learning_rate
        Adam's learning rate.

    Returns
    -------
    Selection
        L peaks, best first (ties by peak index); scores are the final mask values in [0, 1]; the loss
        is the objective with them removed on ``train``.

    Raises
    ------
    ValueError
        When L exceeds the peaks open in the cells.
    """
    candidates = open_candidates(train)
    check_subset_size(candidates, L)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    n_peaks = objective.model.config.n_peaks
    logits = torch.full((n_peaks,), -3.0, dtype=objective.dtype)
    logits += 0.01 * torch.randn(n_peaks, generator=generator, dtype=objective.dtype)
    logits = logits.to(objective.device).requires_grad_(True)
    allowed = torch.zeros(n_peaks, dtype=torch.bool, device=objective.device)
    allowed[torch.as_tensor(candidates, device=objective.device)] = True
    optimiser = torch.optim.Adam([logits], lr=learning_rate)
    for _ in range(steps):
        rows = (np.sort(rng.choice(train.n_cells, size=batch_size, replace=False))
                if train.n_cells > batch_size else np.arange(train.n_cells))
        batch = objective.subset(train, rows)
        mask = torch.sigmoid(logits) * allowed
        removed_pooled, removed_cis = objective.weighted_removal(batch, mask.index_select(0, batch.batch.peaks))
        loss = objective.loss_from_state(batch, batch.pooled - removed_pooled, batch.cis - removed_cis)
        loss = loss + sparsity * mask.sum()
        # The mask's gradient only: backward() would also fill every model parameter's .grad.
        (logits.grad,) = torch.autograd.grad(loss, [logits])
        optimiser.step()
    final = (torch.sigmoid(logits) * allowed).detach().cpu().numpy().astype(np.float64)
    peaks, scores = _top(final[candidates], candidates, L)
    return _selection(objective, train, peaks, scores)


def window_peaks(peaks_table, tss, genes: list[str], *, window: int) -> np.ndarray:
    """Indices of peaks whose midpoint lies within ``window`` bp of any of the genes' TSSs
    (``tss`` as :func:`grids.genome.read_tss` gives it): the surrogate's cis-link rule.

    Parameters
    ----------
    peaks_table
        Consensus peaks (chrom, start, end), in the order of the model's peaks.
    tss
        TSS table (chrom, position, gene); a gene's first TSS is used, a gene without one adds no peak.
    genes
        The target genes.
    window
        Largest distance in bp from a TSS to a peak's midpoint.

    Returns
    -------
    numpy.ndarray
        Peak indices (rows of ``peaks_table``), ascending and unique.
    """
    return np.unique(cis_links(peaks_table, list(genes), tss, window=window)[0])


def correlation(objective: SubsetObjective, train: CellSet, L: int, *, expression: np.ndarray,
                nearby: np.ndarray) -> Selection:
    """Peak–gene correlation as ArchR/Signac link peaks: Pearson r between each peak near the
    targets (``nearby``) and the targets' mean observed expression over the cells; the L peaks
    with the highest r. Fewer than L when fewer nearby peaks vary in these cells.

    Parameters
    ----------
    objective
        The objective of the targets (gives the selection's loss).
    train
        The training cells.
    L
        The subset size.
    expression
        The targets' mean observed expression in each cell of ``train``.
    nearby
        Peak indices near the targets (:func:`window_peaks`).

    Returns
    -------
    Selection
        Up to L peaks, highest r first (ties by peak index); scores are r; the loss is the objective
        with them removed on ``train``.

    Raises
    ------
    NotRun
        When no nearby peak is open in the cells, or neither the nearby peaks nor the expression vary.
    """
    candidates = np.intersect1d(nearby, open_candidates(train))
    if len(candidates) == 0:
        raise NotRun("no peak within the window of the target genes is open in these cells")
    A = train.X_columns[:, candidates].toarray().astype(np.float64)
    y = expression.astype(np.float64)
    A -= A.mean(0)
    y = y - y.mean()
    denominator = np.sqrt((A**2).sum(0) * (y**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denominator > 0, A.T @ y / denominator, np.nan)
    valid = np.isfinite(r)
    if not valid.any():
        raise NotRun("the nearby peaks or the target expression do not vary in these cells")
    peaks, top_scores = _top(r[valid], candidates[valid], min(L, int(valid.sum())))
    return _selection(objective, train, peaks, top_scores)


def _local_target_prediction(objective: SubsetObjective, cells: CellSet, candidates: np.ndarray):
    """A numpy function: the summed target prediction of rows that hold the states of
    ``candidates`` and, last, the index of a cell of ``cells``, whose other peaks keep their
    state. Equal to re-encoding the full input (the encoder is linear in the open peaks, module
    :mod:`grids.explain.core`), but a call touches only the candidate columns: SAGE's and LIME's
    tens of thousands of perturbed inputs cost a few batched products, not an encoding each."""
    open_ = objective._tensor(cells.X_columns[:, candidates].toarray())  # cells x m, the cells' states
    index = torch.as_tensor(candidates, device=objective.device)
    per_peak_pooled = torch.zeros(len(candidates), *cells.pooled.shape[1:], device=objective.device,
                                  dtype=objective.dtype)
    per_peak_pooled[torch.arange(len(candidates), device=objective.device), objective.chrom_of_peak[index]] = \
        objective.delta[index]
    per_peak_cis = objective._tensor(objective.cis_rows[candidates].toarray())  # m x outputs*sums

    def predict(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            cell = torch.as_tensor(rows[:, -1].astype(np.int64), device=objective.device)
            # What each candidate loses against the cell's own state (negative: opened).
            removed = open_.index_select(0, cell) - objective._tensor(rows[:, :-1])
            pooled = cells.pooled.index_select(0, cell) - torch.einsum("bm,mcd->bcd", removed, per_peak_pooled)
            cis = cells.cis.index_select(0, cell) - removed @ per_peak_cis
            predicted = objective.predict(pooled, cis)
            return predicted.index_select(1, objective.target_cols).sum(1).cpu().numpy().astype(np.float64)

    return predict


def sage_selection(objective: SubsetObjective, train: CellSet, L: int, *, nearby: np.ndarray, seed: int,
                   max_features: int = 256, max_cells: int = 32) -> Selection:
    """SAGE values (``sage-importance``, permutation estimator) of the peaks near the targets,
    each closed (set to 0) when left out; every other peak keeps the cell's own state.

    Parameters
    ----------
    objective
        The objective of the targets.
    train
        The training cells.
    L
        The subset size.
    nearby
        Peak indices near the targets (:func:`window_peaks`); those open in the cells are the features.
    seed
        Seed of the cell sample and of SAGE's permutations.
    max_features
        Most features SAGE is run on (config ``sage_max_peaks``).
    max_cells
        Cells explained (a seeded sample).

    Returns
    -------
    Selection
        Up to L peaks, highest SAGE value first (ties by peak index); scores are the SAGE values; the
        loss is the objective with them removed on ``train``.

    Raises
    ------
    NotRun
        When more than ``max_features`` nearby peaks are open in the cells.
    """
    import sage

    candidates = np.intersect1d(nearby, open_candidates(train))
    if len(candidates) > max_features:
        raise NotRun(f"{len(candidates)} candidate peaks near the targets > sage_max_peaks = {max_features}; "
                     "SAGE's cost grows with the number of features")
    rows = np.random.default_rng(seed).permutation(train.n_cells)[:max_cells]
    # SAGE's features are the candidates; the last column, the cell, is in no group, so it is
    # never removed (remaining_features=1) and carries each row's context to the model.
    X = np.hstack([train.X_columns[:, candidates][rows].toarray().astype(np.float64),
                   np.arange(len(rows), dtype=np.float64)[:, None]])
    imputer = sage.GroupedDefaultImputer(_local_target_prediction(objective, objective.subset(train, rows), candidates),
                                         np.zeros(X.shape[1]), [[j] for j in range(len(candidates))],
                                         remaining_features=1)
    np.random.seed(seed)  # sage draws its permutations from numpy's global generator
    estimator = sage.PermutationEstimator(imputer, "mse", random_state=seed)
    explanation = estimator(X, None, batch_size=1024, n_permutations=len(candidates), bar=False,
                            verbose=False)
    peaks, top_scores = _top(np.asarray(explanation.values, dtype=np.float64), candidates, min(L, len(candidates)))
    return _selection(objective, train, peaks, top_scores)


def lime_selection(objective: SubsetObjective, train: CellSet, L: int, *, nearby: np.ndarray, seed: int,
                   max_features: int = 256, cells: int = 16, samples: int = 500) -> Selection:
    """LIME (``lime``) per cell over the peaks near the targets, averaged over up to ``cells``
    cells; the L peaks with the largest mean weight (open -> higher target prediction).

    Parameters
    ----------
    objective
        The objective of the targets.
    train
        The training cells.
    L
        The subset size.
    nearby
        Peak indices near the targets (:func:`window_peaks`); those open in the cells are the features.
    seed
        Seed of LIME and of the cells explained.
    max_features
        Most features LIME is run on (config ``lime_max_peaks``).
    cells
        Most cells explained (a seeded sample).
    samples
        LIME's perturbed samples per cell.

    Returns
    -------
    Selection
        Up to L peaks, largest mean weight first (ties by peak index); scores are the mean weights;
        the loss is the objective with them removed on ``train``.

    Raises
    ------
    NotRun
        When more than ``max_features`` nearby peaks are open in the cells.
    """
    from lime.lime_tabular import LimeTabularExplainer

    candidates = np.intersect1d(nearby, open_candidates(train))
    if len(candidates) > max_features:
        raise NotRun(f"{len(candidates)} candidate peaks near the targets > lime_max_peaks = {max_features}; "
                     "LIME's local fits grow with the number of features")
    local = train.X_columns[:, candidates].toarray().astype(np.float64)
    predict_rows = _local_target_prediction(objective, train, candidates)
    explainer = LimeTabularExplainer(local, mode="regression", categorical_features=list(range(len(candidates))),
                                     discretize_continuous=False, random_state=seed)
    rows = np.random.default_rng(seed).permutation(train.n_cells)[:cells]
    weights = np.zeros(len(candidates))
    for row in rows:
        def predict(Z: np.ndarray, row: int = int(row)) -> np.ndarray:
            return predict_rows(np.hstack([Z, np.full((len(Z), 1), row, dtype=np.float64)]))

        explanation = explainer.explain_instance(local[row], predict, num_features=len(candidates),
                                                 num_samples=samples)
        for feature, weight in explanation.as_map()[next(iter(explanation.as_map()))]:
            weights[feature] += weight
    peaks, top_scores = _top(weights / len(rows), candidates, min(L, len(candidates)))
    return _selection(objective, train, peaks, top_scores)
