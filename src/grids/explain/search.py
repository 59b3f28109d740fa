"""GRIDS: coordinate descent over subsets of size L with gradient-ranked candidates (docs/architecture.md §5)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .core import CellSet, SubsetObjective

__all__ = ["Ask", "GridsSettings", "Selection", "answer", "check_subset_size", "drive", "grids_search",
           "grids_steps", "open_candidates", "rank_subset",
           "search_candidates", "sufficient_order", "sufficiency_scores"]

log = logging.getLogger(__name__)


@dataclass
class GridsSettings:
    """Search settings (config key ``explain``)."""

    L: int = 10
    k: int = 32
    steps: int = 500
    batch_size: int = 64
    seed: int = 0
    init: str = "saliency"  # "saliency" (the L best gains at r = {}) or "random" (docs/architecture.md §5)
    patience: int = 2  # stop after this many full passes over r without a swap (0: run every step)
    verify: bool = True  # keep a swap only if it also lowers L on all training cells
    verify_top: int = 4  # batch-best swaps tried on all training cells per step
    # "pairs": when single swaps stall, try replacing two of r's weakest members by a pair of
    # proposals (the best gains and, in the targets' window, the most sufficient peaks); this
    # finds redundant (OR) pairs whose members do nothing alone. "single": the paper's search.
    moves: str = "pairs"
    pair_pool: int = 12  # proposals a pair is drawn from
    pair_positions: int = 3  # weakest members of r that a pair may replace

    def __post_init__(self) -> None:
        if self.moves not in ("pairs", "single"):
            raise ValueError(f"explain.moves must be 'pairs' or 'single', got {self.moves!r}")


@dataclass
class Selection:
    """A ranked subset with per-peak scores and, for GRIDS, the objective curves."""

    peaks: np.ndarray  # peak indices, best first
    scores: np.ndarray  # higher = more important
    train_loss: float
    curve: dict[str, list[float]] = field(default_factory=dict)  # step -> batch / validation loss


@dataclass(frozen=True)
class Ask:
    """One question a search asks its objective: ``objective.<name>(cells, *args)``, where name
    is ``loss``, ``gains``, ``swap_losses`` or ``subset_losses``."""

    name: str
    objective: Any
    cells: Any
    args: tuple


# A search is a generator: it yields an Ask (or a list of them), is sent the answer (or the
# list of answers), and returns its result. drive() runs many searches in lockstep, so that the
# questions of many targets are answered together.
Search = Generator[Any, Any, Any]


def answer(asks: Sequence[Ask]) -> list:
    """The answers to ``asks``: objectives that answer many at once (a shared ``batch_key`` and
    an ``answer_many``) get their asks of one kind together, the others one at a time.

    Parameters
    ----------
    asks
        The questions, of any objectives and kinds.

    Returns
    -------
    list
        The answer to each ask, in the order of ``asks``.
    """
    out: list = [None] * len(asks)
    groups: dict[tuple, list[int]] = {}
    for i, ask in enumerate(asks):
        key = getattr(ask.objective, "batch_key", None)
        groups.setdefault((ask.name, type(ask.objective), id(ask.objective) if key is None else key), []).append(i)
    for (name, kind, _), members in groups.items():
        many = getattr(kind, "answer_many", None)
        if many is not None:
            answers = many(name, [(asks[i].objective, asks[i].cells, asks[i].args) for i in members])
        else:
            answers = [getattr(asks[i].objective, name)(asks[i].cells, *asks[i].args) for i in members]
        for i, value in zip(members, answers):
            out[i] = value
    return out


def drive(searches: Sequence[Search], *, progress: bool = False, description: str = "searches") -> list:
    """Run searches in lockstep and return their results, in order. Each round collects the
    pending question of every unfinished search and answers them together (:func:`answer`); a
    search that finishes drops out, so each target stops on its own.

    Parameters
    ----------
    searches
        Search generators (e.g. :func:`grids_steps`), not yet started.
    progress
        Show a progress bar of the searches finished.
    description
        Label of the progress bar.

    Returns
    -------
    list
        Each search's return value, in the order of ``searches``.
    """
    results: list = [None] * len(searches)
    pending: dict[int, Any] = {}
    bar = tqdm(total=len(searches), desc=description, unit="target", disable=not progress, leave=False)

    def advance(i: int, value: Any) -> None:
        try:
            pending[i] = searches[i].send(value)
        except StopIteration as stop:
            results[i] = stop.value
            pending.pop(i, None)
            bar.update(1)

    for i in range(len(searches)):
        advance(i, None)
    while pending:
        order = list(pending)
        flat = [(i, ask) for i in order for ask in (pending[i] if isinstance(pending[i], list) else [pending[i]])]
        answers = answer([ask for _, ask in flat])
        by_search: dict[int, list] = {}
        for (i, _), value in zip(flat, answers):
            by_search.setdefault(i, []).append(value)
        for i in order:
            advance(i, by_search.get(i, []) if isinstance(pending[i], list) else by_search[i][0])
    bar.close()
    return results


def open_candidates(cells: CellSet) -> np.ndarray:
    """Peaks open in at least one of the cells: only their removal can change a prediction.

    Parameters
    ----------
    cells
        The cells (:class:`grids.explain.core.CellSet`).

    Returns
    -------
    numpy.ndarray
        Indices of those peaks, ascending.
    """
    return np.flatnonzero(np.asarray(cells.X.getnnz(axis=0)) > 0)


def check_subset_size(candidates: np.ndarray, L: int) -> None:
    """A subset of L peaks must fit among the peaks open in the cells.

    Parameters
    ----------
    candidates
        The peaks a search may select.
    L
        The subset size.

    Raises
    ------
    ValueError
        When ``L`` exceeds the number of candidates.
    """
    if L > len(candidates):
        raise ValueError(f"L = {L} is larger than the {len(candidates)} peaks open in these cells")


def rank_subset(objective: SubsetObjective, cells: CellSet, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order a subset by how much the objective rises when each member alone is put back.

    Parameters
    ----------
    objective
        The objective of the targets.
    cells
        The cells the scores are taken on.
    subset
        Peak indices of the subset.

    Returns
    -------
    peaks : numpy.ndarray
        The members of ``subset``, highest score first (ties in subset order).
    scores : numpy.ndarray
        Each member's score, L with only that member put back minus L(r), in the same order.
    """
    return drive([_ranked(objective, cells, subset)])[0]


def _ranked(objective, cells, subset: np.ndarray) -> Search:
    """:func:`rank_subset` as a search's questions."""
    full, *without = yield Ask("put_back_losses", objective, cells, (subset,))
    scores = np.array(without) - full
    order = np.argsort(-scores, kind="stable")
    return subset[order], scores[order]


def sufficiency_scores(objective: SubsetObjective, cells: CellSet, window: np.ndarray) -> np.ndarray:
    """CREME-style sufficiency of each window peak: how much higher the objective stays when it
    is the only window peak left open, L(W \\ {j}) - L(W). A peak that keeps the target on alone
    scores high even when removing it alone changes nothing (a redundant enhancer).

    Parameters
    ----------
    objective
        The objective of the targets.
    cells
        The cells the scores are taken on.
    window
        Peak indices of the window W.

    Returns
    -------
    numpy.ndarray
        One score per peak of ``window``, in its order; empty for an empty window.
    """
    window = np.asarray(window, dtype=np.int64)
    if len(window) == 0:
        return np.zeros(0)
    losses = objective.put_back_losses(cells, window)
    return losses[1:] - losses[0]


def search_candidates(cells: CellSet, allowed: np.ndarray | None = None) -> np.ndarray:
    """The peaks a search may select: open in the cells and, if given, in ``allowed``.

    Parameters
    ----------
    cells
        The cells (:class:`grids.explain.core.CellSet`).
    allowed
        Peak indices the search is restricted to; no restriction when None.

    Returns
    -------
    numpy.ndarray
        Indices of the candidate peaks, ascending.
    """
    candidates = open_candidates(cells)
    return candidates if allowed is None else np.intersect1d(candidates, allowed)


def sufficient_order(objective: SubsetObjective, cells: CellSet, window: np.ndarray, *,
                     allowed: np.ndarray | None = None, seed: int = 0, max_rows: int = 1 << 17) -> np.ndarray:
    """The window's candidate peaks (:func:`search_candidates`), most sufficient first
    (:func:`sufficiency_scores`): the proposals of pair moves. It depends on neither L nor the
    subset, so a caller searching several L computes it once. Scoring costs one decoder pass
    per (window peak, cell); when that exceeds ``max_rows`` (a gene set's window spans most of
    the genome) the scores are taken on a seeded subsample of the cells: they only rank
    proposals, which the search then scores exactly on every cell.

    Parameters
    ----------
    objective
        The objective of the targets.
    cells
        The training cells.
    window
        Peak indices of the targets' cis window.
    allowed
        Peak indices the search is restricted to; no restriction when None.
    seed
        Seed of the cell subsample.
    max_rows
        Most (window peak, cell) decoder rows scored before the cells are subsampled.

    Returns
    -------
    numpy.ndarray
        The window's candidate peaks, most sufficient first (ties in ascending peak order).
    """
    in_window = np.intersect1d(window, search_candidates(cells, allowed))
    if len(in_window) * cells.n_cells > max_rows:
        keep = max(1, max_rows // max(len(in_window), 1))
        rows = np.sort(np.random.default_rng(seed).choice(cells.n_cells, size=keep, replace=False))
        cells = objective.subset(cells, rows)
    return in_window[np.argsort(-sufficiency_scores(objective, cells, in_window), kind="stable")]


def _member_scores(objective: SubsetObjective, cells: CellSet, subset: np.ndarray, loss: float) -> Search:
    """How much L rises when each member alone is put back (leave-one-out)."""
    if len(subset) < 2:
        return np.full(len(subset), np.inf)
    return (yield Ask("put_back_losses", objective, cells, (subset,)))[1:] - loss


def _pair_move(objective: SubsetObjective, train: CellSet, subset: np.ndarray, loss: float, pool: np.ndarray,
               positions: int) -> Search:
    """The best subset with two of r's weakest members replaced by a pair from ``pool``, scored
    exactly on all training cells; None when no pair lowers L."""
    pool = np.setdiff1d(pool, subset)
    if len(pool) < 2 or len(subset) < 2:
        return None
    weakest = np.argsort((yield from _member_scores(objective, train, subset, loss)), kind="stable")[:positions]
    options = [np.concatenate([np.delete(subset, [p, q]), [a, b]])
               for p, q in itertools.combinations(sorted(weakest), 2)
               for a, b in itertools.combinations(pool, 2)]
    losses = yield Ask("subset_losses", objective, train, (np.array(options),))
    best = int(np.argmin(losses))
    if losses[best] >= loss:
        return None
    return np.sort(options[best]), float(losses[best])


def grids_search(objective: SubsetObjective, train: CellSet, settings: GridsSettings, **options: Any) -> Selection:
    """Minimise L(r) over |r| = L on training cells: :func:`grids_steps` driven alone, with its
    keyword options (validation, window, allowed, sufficient, progress, description). Many targets
    at once: ``drive([grids_steps(...), ...])``.

    Parameters
    ----------
    objective
        The objective of the targets.
    train
        The training cells.
    settings
        The search settings (L, k, steps, ...).
    **options
        Keyword options of :func:`grids_steps`.

    Returns
    -------
    Selection
        The search's result (see :func:`grids_steps`).

    Raises
    ------
    ValueError
        When L exceeds the peaks the search may select, or ``settings.init`` is unknown.
    """
    return drive([grids_steps(objective, train, settings, **options)])[0]


def grids_steps(
    objective: SubsetObjective,
    train: CellSet,
    settings: GridsSettings,
    *,
    validation: CellSet | None = None,
    window: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    sufficient: np.ndarray | None = None,
    progress: bool = False,
    description: str = "grids",
) -> Search:
    """Minimise L(r) over |r| = L on training cells, as a search (see :func:`drive`): it yields
    its questions to the objective, so many targets' searches can be answered together.

    A swap (or pair move) is kept only when it lowers L on all training cells and does not raise
    it on ``validation`` cells, so the search never ends worse than its start on held-out cells.
    ``window`` (the targets' cis-window peaks) feeds the sufficiency proposals of pair moves;
    ``allowed`` restricts the candidates (a cis-restricted search). ``sufficient`` is
    :func:`sufficient_order` computed beforehand (it is the same for every L).

    Parameters
    ----------
    objective
        The objective of the targets.
    train
        The training cells: the batches and the checks of each move.
    settings
        The search settings (L, k, steps, init, moves, ...).
    validation
        Held-out cells a kept move must not make worse; no such check when None.
    window
        Peak indices of the targets' cis window; no sufficiency proposals when None.
    allowed
        Peak indices the candidates are restricted to; no restriction when None.
    sufficient
        :func:`sufficient_order` of ``window``; computed here when None and pair moves need it.
    progress
        Show a progress bar of the steps.
    description
        Label of the progress bar and of the log messages.

    Yields
    ------
    Ask or list of Ask
        The next question(s) to the objective; the search is sent the answer (or list of answers).

    Returns
    -------
    Selection
        The generator's return value (what :func:`drive` collects): the subset ranked by
        :func:`rank_subset` on the training cells, its scores, its loss on the training cells and the
        curve (per step: step, batch, train, validation, move; and kept_start, whether the start was
        kept because the end dropped the targets less on the validation cells).

    Raises
    ------
    ValueError
        When L exceeds the peaks the search may select, or ``settings.init`` is neither 'saliency' nor
        'random'; raised once the search is first advanced (a generator).
    """
    candidates = search_candidates(train, allowed)
    check_subset_size(candidates, settings.L)
    rng = np.random.default_rng(settings.seed)
    if settings.init == "saliency":
        gains = yield Ask("gains", objective, train, (np.array([], dtype=np.int64),))
        subset = np.sort(candidates[np.argsort(gains[candidates], kind="stable")[: settings.L]])
    elif settings.init == "random":
        subset = np.sort(rng.choice(candidates, size=settings.L, replace=False))
    else:
        raise ValueError(f"unknown GRIDS start {settings.init!r}; use random or saliency")
    start = subset.copy()
    since_swap = 0
    train_loss = yield Ask("loss", objective, train, (subset,))
    val_loss = (yield Ask("loss", objective, validation, (subset,))) if validation is not None else None
    allowed_mask = np.zeros(objective.n_features, dtype=bool)
    allowed_mask[candidates] = True
    if settings.moves != "pairs" or window is None:
        sufficient = np.zeros(0, dtype=np.int64)
    elif sufficient is None:
        sufficient = sufficient_order(objective, train, window, allowed=allowed, seed=settings.seed)

    def accept(proposal: np.ndarray, proposal_loss: float) -> Search:
        """Kept when L falls on the training cells and does not rise on the validation cells."""
        nonlocal subset, train_loss, val_loss
        if proposal_loss >= train_loss:
            return False
        proposal_val = (yield Ask("loss", objective, validation, (proposal,))) if validation is not None else None
        if proposal_val is not None and proposal_val > val_loss:
            return False
        subset, train_loss, val_loss = proposal, proposal_loss, proposal_val
        return True

    curve: dict[str, list[float]] = {"step": [], "batch": [], "train": [], "validation": [], "move": []}
    n_pair_moves = 0
    bar = tqdm(range(settings.steps), desc=description, unit="step", disable=not progress, leave=False)
    for step in bar:
        if train.n_cells > settings.batch_size:
            rows = np.sort(rng.choice(train.n_cells, size=settings.batch_size, replace=False))
            batch = objective.subset(train, rows)
        else:
            batch = train
        gains = yield Ask("gains", objective, batch, (subset,))
        # Row i of the transition matrix is d shifted by a constant, so its k best entries are
        # the k lowest gains outside r, whatever i is (docs/architecture.md §5 step 3).
        open_outside = allowed_mask.copy()
        open_outside[subset] = False
        pool = np.flatnonzero(open_outside)
        k = min(settings.k, len(pool))
        if k == 0:
            break
        best = pool[np.argpartition(gains[pool], k - 1)[:k]] if k < len(pool) else pool
        position = step % settings.L
        losses = yield Ask("swap_losses", objective, batch, (subset, position, best))
        choice = 0
        move = "none"
        if settings.verify:
            # The batch is a sample: swaps that look better on it are tried in order, and one is
            # kept only if the objective on all training (and validation) cells agrees.
            for option in np.argsort(losses[1:], kind="stable")[: settings.verify_top] + 1:
                if losses[option] >= losses[0]:
                    break
                swapped = subset.copy()
                swapped[position] = best[option - 1]
                if (yield from accept(swapped, (yield Ask("loss", objective, train, (swapped,))))):
                    choice, move = int(option), "swap"
                    break
        else:
            choice = int(np.argmin(losses))
            if choice > 0:
                subset = subset.copy()
                subset[position] = best[choice - 1]
                move = "swap"
        since_swap = 0 if choice > 0 else since_swap + 1
        stalled = settings.patience and since_swap >= settings.patience * settings.L
        if stalled and settings.moves == "pairs" and settings.verify:
            # Single swaps are stuck: try pair moves from the best gains and the most sufficient
            # window peaks (half each), which see OR pairs that no single swap can.
            half = settings.pair_pool // 2
            by_gain = best[np.argsort(gains[best], kind="stable")]
            in_subset = set(subset.tolist())
            by_sufficiency = [j for j in sufficient.tolist() if j not in in_subset][:half]
            proposals = np.array(list(dict.fromkeys([*by_sufficiency, *by_gain.tolist()]))[: settings.pair_pool],
                                 dtype=np.int64)
            moved = yield from _pair_move(objective, train, subset, train_loss, proposals, settings.pair_positions)
            if moved is not None and (yield from accept(*moved)):
                since_swap, stalled, move = 0, False, "pair"
                n_pair_moves += 1
        curve["step"].append(step)
        curve["batch"].append(float(losses[choice]))
        curve["train"].append(float(train_loss) if settings.verify else float("nan"))
        curve["move"].append(move)
        if validation is not None:
            if settings.verify:
                curve["validation"].append(val_loss)
            else:
                curve["validation"].append((yield Ask("loss", objective, validation, (subset,))))
            bar.set_postfix(batch=f"{losses[choice]:.4g}", val=f"{curve['validation'][-1]:.4g}")
        if stalled:
            log.debug("no swap or pair move in %d passes over r: stopping at step %d", settings.patience, step)
            break
    bar.close()
    if n_pair_moves:
        log.debug("%s: %d pair move(s) kept", description, n_pair_moves)
    # The objective (squared per-cell ratios, log scale) and the reported drop (change of the
    # cell mean, natural scale) can disagree, most for gene sets: on validation cells the end
    # must also be at least as good as the start in the reported figure, or the start is kept.
    curve["kept_start"] = False
    if validation is not None and settings.verify and set(subset.tolist()) != set(start.tolist()):
        if objective.relative_change(validation, subset) > objective.relative_change(validation, start):
            log.info("%s: the search's end drops the targets less than its start on validation cells; "
                     "keeping the start", description)
            subset, curve["kept_start"] = start, True
    peaks, scores = yield from _ranked(objective, train, subset)
    return Selection(peaks, scores, (yield Ask("loss", objective, train, (subset,))), curve)
