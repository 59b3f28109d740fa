"""``explain_model``: GRIDS (and its gradient and SAGE baselines) on any differentiable model.

    >>> from grids.explain import explain_model
    >>> result = explain_model(classifier, X, target=1, L=4)   # doctest: +SKIP
    >>> result.features, result.scores, result.objective        # doctest: +SKIP

The workflow explains its ATAC -> RNA surrogate through :class:`grids.explain.core.SubsetObjective`,
which scores removals without re-encoding cells. Here the same search runs on
:class:`grids.explain.generic.ModuleObjective`, which masks the inputs of any ``torch.nn.Module``.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Explanation", "explain_model", "EXPLAIN_MODEL_METHODS"]

EXPLAIN_MODEL_METHODS = ("grids", "saliency", "sage")


@dataclass
class Explanation:
    """A ranked set of L features: ``features`` (indices into X's columns, most important first),
    their ``scores`` (how much the objective rises when each alone is put back; SAGE values for
    ``sage``), and ``objective``, L(r) on X with the set removed (the unperturbed value is 1 per
    target)."""

    features: np.ndarray
    scores: np.ndarray
    objective: float
    method: str
    curve: dict[str, list] = field(default_factory=dict)


def explain_model(model, X, *, target, L: int, baseline: float | np.ndarray = 0.0, method: str = "grids",
                  seed: int = 0, validation=None, **settings: Any) -> Explanation:
    """The L features whose joint removal (set to ``baseline``) lowers the model's ``target``
    outputs most over the samples X.

    ``model`` is a differentiable ``torch.nn.Module`` mapping (samples x features) to outputs that
    are nonnegative (probabilities, rates); ``target`` is an output index or a list of them; X a
    NumPy array or tensor. ``method``: ``grids`` (the subset search; ``settings`` are
    :class:`grids.explain.search.GridsSettings` fields such as ``k``, ``steps``, ``batch_size``),
    ``saliency`` (the L best first-order gains, GRIDS's start) or ``sage`` (the top L SAGE values
    of ``sage-importance``'s permutation estimator, a feature left out set to the baseline).
    ``validation`` (samples like X) makes GRIDS keep a move only if it does not raise the
    objective there.

    Parameters
    ----------
    model
        A differentiable ``torch.nn.Module`` mapping samples x features to nonnegative outputs.
    X
        The samples (NumPy array or tensor, samples x features).
    target
        Output index, or a list of them, whose outputs the removal should lower.
    L
        Number of features selected.
    baseline
        The value a removed feature is set to: one for all features, or one per feature.
    method
        One of :data:`EXPLAIN_MODEL_METHODS`: 'grids', 'saliency' or 'sage'.
    seed
        Seed of the search (or of SAGE's permutations).
    validation
        Held-out samples for GRIDS (like ``X``); none when None. Other methods ignore it.
    **settings
        :class:`grids.explain.search.GridsSettings` fields (``k``, ``steps``, ``batch_size``, ...),
        for ``grids`` only.

    Returns
    -------
    Explanation
        ``features`` (most important first), ``scores``, ``objective`` (L(r) on X with the features
        removed), ``method``, and for ``grids`` the search's ``curve``.

    Raises
    ------
    ValueError
        When ``method`` is unknown, X is not two-dimensional, a target is not an output of the model,
        the target outputs are negative, or L exceeds the features that differ from the baseline in
        some sample.
    TypeError
        When ``settings`` are given to a method other than ``grids``, or name no GridsSettings field.
    """
    from .generic import ModuleObjective
    from .search import GridsSettings, check_subset_size, grids_search, open_candidates, rank_subset

    if method not in EXPLAIN_MODEL_METHODS:
        raise ValueError(f"method {method!r}: choose one of {', '.join(EXPLAIN_MODEL_METHODS)}")
    objective = ModuleObjective(model, target, baseline)
    cells = objective.cells(X)
    candidates = open_candidates(cells)
    check_subset_size(candidates, L)
    if method == "grids":
        held_out = objective.cells(validation) if validation is not None else None
        selection = grids_search(objective, cells, GridsSettings(L=L, seed=seed, **settings), validation=held_out)
        return Explanation(selection.peaks, selection.scores, selection.train_loss, method, selection.curve)
    if settings:
        raise TypeError(f"method {method!r} takes no settings; got {', '.join(settings)}")
    if method == "saliency":
        gains = objective.gains(cells, np.array([], dtype=np.int64))
        chosen = candidates[np.argsort(gains[candidates], kind="stable")[:L]]
        features, scores = rank_subset(objective, cells, chosen)
        return Explanation(features, scores, objective.loss(cells, features), method)
    values = _sage_values(objective, cells, candidates, seed)
    order = np.argsort(-values, kind="stable")[:L]
    features = candidates[order]
    return Explanation(features, values[order], objective.loss(cells, features), method)


def _sage_values(objective, cells, candidates: np.ndarray, seed: int) -> np.ndarray:
    """SAGE values (sensitivity of the summed target outputs, ``sage-importance``) of the
    candidate features; a feature left out takes the baseline value."""
    import sage
    import torch

    inputs = cells.inputs.cpu().numpy().astype(np.float64)
    baseline = objective.baseline.cpu().numpy().astype(np.float64)

    def predict(rows: np.ndarray) -> np.ndarray:
        full = np.broadcast_to(baseline, (len(rows), len(baseline))).copy()
        full[:, candidates] = rows
        with torch.no_grad():
            out = objective.model(torch.as_tensor(full, dtype=objective.dtype, device=objective.device))
            return out.index_select(1, objective.targets).sum(1).cpu().numpy().astype(np.float64)

    imputer = sage.DefaultImputer(predict, baseline[candidates])
    np.random.seed(seed)  # sage draws its permutations from numpy's global generator
    estimator = sage.PermutationEstimator(imputer, "mse", random_state=seed)
    with contextlib.redirect_stdout(io.StringIO()):  # sage prints its mode even when not verbose
        explanation = estimator(inputs[:, candidates], None, batch_size=512, bar=False, verbose=False)
    return np.asarray(explanation.values, dtype=np.float64)
