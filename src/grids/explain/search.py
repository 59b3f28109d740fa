"""GRIDS: coordinate descent over subsets of size L with gradient-ranked candidates (DESIGN §5)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .core import CellSet, SubsetObjective

__all__ = ["GridsSettings", "Selection", "check_subset_size", "grids_search", "open_candidates", "rank_subset"]

log = logging.getLogger(__name__)


@dataclass
class GridsSettings:
    """Search settings (config key ``explain``)."""

    L: int = 10
    k: int = 32
    steps: int = 500
    batch_size: int = 64
    seed: int = 0
    init: str = "saliency"  # "saliency" (the L best gains at r = {}) or "random" (DESIGN §5)
    patience: int = 2  # stop after this many full passes over r without a swap (0: run every step)
    verify: bool = True  # keep a swap only if it also lowers L on all training cells
    verify_top: int = 4  # batch-best swaps tried on all training cells per step


@dataclass
class Selection:
    """A ranked subset with per-peak scores and, for GRIDS, the objective curves."""

    peaks: np.ndarray  # peak indices, best first
    scores: np.ndarray  # higher = more important
    train_loss: float
    curve: dict[str, list[float]] = field(default_factory=dict)  # step -> batch / validation loss


def open_candidates(cells: CellSet) -> np.ndarray:
    """Peaks open in at least one of the cells: only their removal can change a prediction."""
    return np.flatnonzero(np.asarray(cells.X.getnnz(axis=0)) > 0)


def check_subset_size(candidates: np.ndarray, L: int) -> None:
    """A subset of L peaks must fit among the peaks open in the cells."""
    if L > len(candidates):
        raise ValueError(f"L = {L} is larger than the {len(candidates)} peaks open in these cells")


def rank_subset(objective: SubsetObjective, cells: CellSet, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order a subset by how much the objective rises when each member alone is put back."""
    full = objective.loss(cells, subset)
    scores = np.array([objective.loss(cells, np.delete(subset, i)) - full for i in range(len(subset))])
    order = np.argsort(-scores, kind="stable")
    return subset[order], scores[order]


def grids_search(
    objective: SubsetObjective,
    train: CellSet,
    settings: GridsSettings,
    *,
    validation: CellSet | None = None,
    progress: bool = False,
    description: str = "grids",
) -> Selection:
    """Minimise L(r) over |r| = L on training cells; log the validation objective every step."""
    candidates = open_candidates(train)
    check_subset_size(candidates, settings.L)
    rng = np.random.default_rng(settings.seed)
    if settings.init == "saliency":
        gains = objective.gains(train, np.array([], dtype=np.int64))
        subset = np.sort(candidates[np.argsort(gains[candidates], kind="stable")[: settings.L]])
    elif settings.init == "random":
        subset = np.sort(rng.choice(candidates, size=settings.L, replace=False))
    else:
        raise ValueError(f"unknown GRIDS start {settings.init!r}; use random or saliency")
    since_swap = 0
    train_loss = objective.loss(train, subset)
    allowed = np.zeros(objective.model.config.n_peaks, dtype=bool)
    allowed[candidates] = True
    curve: dict[str, list[float]] = {"step": [], "batch": [], "train": [], "validation": []}
    bar = tqdm(range(settings.steps), desc=description, unit="step", disable=not progress, leave=False)
    for step in bar:
        if train.n_cells > settings.batch_size:
            rows = np.sort(rng.choice(train.n_cells, size=settings.batch_size, replace=False))
            batch = objective.subset(train, rows)
        else:
            batch = train
        gains = objective.gains(batch, subset)
        # Row i of the transition matrix is d shifted by a constant, so its k best entries are
        # the k lowest gains outside r, whatever i is (DESIGN §5 step 3).
        open_outside = allowed.copy()
        open_outside[subset] = False
        pool = np.flatnonzero(open_outside)
        k = min(settings.k, len(pool))
        if k == 0:
            break
        best = pool[np.argpartition(gains[pool], k - 1)[:k]] if k < len(pool) else pool
        position = step % settings.L
        losses = objective.swap_losses(batch, subset, position, best)
        choice = 0
        if settings.verify:
            # The batch is a sample: swaps that look better on it are tried in order, and one is
            # kept only if the objective on all training cells agrees, so r never gets worse.
            for option in np.argsort(losses[1:], kind="stable")[: settings.verify_top] + 1:
                if losses[option] >= losses[0]:
                    break
                swapped = subset.copy()
                swapped[position] = best[option - 1]
                swapped_loss = objective.loss(train, swapped)
                if swapped_loss < train_loss:
                    subset, train_loss, choice = swapped, swapped_loss, int(option)
                    break
        else:
            choice = int(np.argmin(losses))
            if choice > 0:
                subset = subset.copy()
                subset[position] = best[choice - 1]
        since_swap = 0 if choice > 0 else since_swap + 1
        curve["step"].append(step)
        curve["batch"].append(float(losses[choice]))
        curve["train"].append(float(train_loss) if settings.verify else float("nan"))
        if validation is not None:
            curve["validation"].append(objective.loss(validation, subset))
            bar.set_postfix(batch=f"{losses[choice]:.4g}", val=f"{curve['validation'][-1]:.4g}")
        if settings.patience and since_swap >= settings.patience * settings.L:
            log.debug("no swap in %d passes over r: stopping at step %d", settings.patience, step)
            break
    peaks, scores = rank_subset(objective, train, subset)
    return Selection(peaks, scores, objective.loss(train, subset), curve)
