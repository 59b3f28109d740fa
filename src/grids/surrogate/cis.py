"""The cis path's group units: saturating (OR) and synergistic (AND) sets of nearby peaks (docs/architecture.md §4).

The ridge regression gives each gene a linear (additive) cis term. Some genes are kept on by any
one of several enhancers (redundancy, OR) or need two together (AND); no additive model can
show that. For every gene we therefore test every pair of its strongest nearby peaks for an
interaction on what the ridge leaves: sub-additive is "any of S open" (OR), super-additive "all of
S open" (AND); OR triples of the strongest peaks are tested too, since each pair of a triple
shows its interaction only where the third member is closed. A seed whose indicator explains a
significant share (partial F above ``min_f``) grows by further members while each raises its F
(an OR group's third member is rarely strong alone), and becomes one unit of the surrogate's cis
path,

    unit(x) = a * clamp~(1.5 * sum_{j in S} x_j - 1.5 (t - 1) - 0.25),  t = 1 (OR) or |S| (AND),

which is the indicator up to the smooth clamp's rounding (< 1% at the default sharpness). The
gene's ridge is then refitted with its units as extra columns (optionally kept only where they
also lower the gene's validation error); a unit's members keep linear terms of their own only
where the data ask for them (``member_f``), so a pure OR saturates exactly. The state stays a
sum over open peaks, so the explainer's removals stay exact.

How an OR set is accepted is a setting (``GroupUnitSettings.or_test``, config key
``surrogate.cis_or_test``): by its interaction beyond the members' additive terms, by parsimony
(its indicator alone against those terms), or, by default, by either. A grown set must raise the
evidence of the test that found it (the interaction's F, or parsimony's lead).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from .model import smooth_clamp

__all__ = ["GroupUnitSettings", "fit_group_units", "unit_offset"]

log = logging.getLogger(__name__)

UNIT_SLOPE = 1.5  # weight of each member in a unit's sum


@dataclass
class GroupUnitSettings:
    """How group units are searched and fitted."""

    top_k: int = 10  # strongest nearby peaks (by ridge weight) a gene's pairs are drawn from
    # Strongest peaks OR triples are also drawn from (0: pairs only). Within an OR group of three
    # each pair's interaction shows only where the third member is closed, so a triple can be
    # clear while none of its pairs passes ``min_f``.
    triples_top_k: int = 8
    max_set: int = 4  # largest set a found pair grows to
    grow_f: float = 6.0  # F gain for each member added to a found set
    # Partial F of a seed's interaction on the ridge residual. 45 pairs and 56 triples are tested
    # per gene, so 12 (p = 5e-4 each) keeps false units near 5% of genes.
    min_f: float = 12.0
    unit_penalty: float = 0.05  # ridge penalty of a unit's output weight, relative to the peaks'
    # A unit's members keep their own linear terms only where these lower the training error by
    # this partial F (p < 5e-4 for 2-3 terms); otherwise the unit alone carries them. Under a
    # true OR the linear terms are noise, and any weight they keep makes one member's removal
    # cost something where another member is open, diluting the saturation the unit found.
    # (Demo: 4 and 8 give the same OR ratios; 8 keeps chance fits out on large data.)
    member_f: float = 8.0
    # How an OR (redundant) set is accepted. "interaction": its indicator must add ``min_f``
    # beyond its members' additive terms; "parsimony": the indicator alone, one term, must fit the
    # gene's residual (with the members' ridge terms put back) better than the members' additive
    # terms by ``or_margin`` noise units (a log-likelihood ratio, 2 x delta log L) and explain
    # ``min_f``; "either" (default): a set passing one of them. The interaction test gives away
    # the cells where one member stands in for another: an additive fit absorbs most of an OR
    # group's contrast, so groups of three with members open in half the cells stay below min_f
    # (demo, 73 planted OR groups: 43 learned, parsimony 46). But it also gives natural-scale
    # additive pairs, sub-additive on the log scale, a unit beside their members' linear terms,
    # which is how a log-scale cis path represents them; parsimony alone rejects those, and the
    # demo's additive controls then fall to a ratio of 0.81. Either keeps both (benchmarks/RESULTS.md).
    or_test: str = "either"
    or_margin: float = 6.0
    # Also require a lower validation error per gene. Off by default: a group active in one cell
    # type has ~20 validation cells, too few to confirm it, and rejecting there costs more true
    # units than it saves false ones (demo: OR ratio 1.05 with it, 1.29 without).
    validate: bool = False

    def __post_init__(self) -> None:
        if self.or_test not in OR_TESTS:
            raise ValueError(f"group units: or_test must be one of {', '.join(OR_TESTS)}, not {self.or_test!r}")


OR_TESTS = ("parsimony", "interaction", "either")


def unit_offset(size: int, logic: str) -> float:
    """Bias c of a unit over ``size`` members: its sum crosses 1 when t members are open.

    Parameters
    ----------
    size
        Number of member peaks.
    logic
        ``"or"`` (t = 1); any other value is taken as AND (t = ``size``).

    Returns
    -------
    float
        ``-1.5 * (t - 1) - 0.25``.
    """
    threshold = 1 if logic == "or" else size
    return -UNIT_SLOPE * (threshold - 1) - 0.25


def _unit_values(A_set: np.ndarray, logic: str, sharpness: float) -> np.ndarray:
    """The unit's smooth-clamped value per cell, exactly as the model computes it (float32)."""
    u = UNIT_SLOPE * A_set.sum(1) + unit_offset(A_set.shape[1], logic)
    return smooth_clamp(torch.as_tensor(u, dtype=torch.float32), sharpness).numpy().astype(np.float64)


def _set_score(A: np.ndarray, columns: tuple[int, ...], logic: str, residual: np.ndarray, noise: float,
               sharpness: float) -> tuple[float, float, np.ndarray]:
    """(partial F, coefficient sign, unit values) of a set's indicator on the ridge residual,
    beyond its members' own linear terms."""
    members = A[:, list(columns)]
    n = len(residual)
    f = _unit_values(members, logic, sharpness)
    basis = np.column_stack([np.ones(n), members])
    orth = f - basis @ np.linalg.lstsq(basis, f, rcond=None)[0]
    norm = orth @ orth
    if norm < 1e-6 * n:
        return 0.0, 0.0, f
    projection = orth @ residual
    return projection**2 / norm / max(noise, 1e-12), float(np.sign(projection)), f


def _or_parsimony(A: np.ndarray, weight: np.ndarray, columns: tuple[int, ...], residual: np.ndarray, noise: float,
                  sharpness: float, margin: float) -> tuple[float, bool, np.ndarray, float]:
    """The two models a redundant set is judged between, on the residual with the members' own
    ridge terms put back: its OR indicator alone, and the members' additive terms. Returns (F of
    the indicator alone, whether it fits better than the additive terms by ``margin`` noise units
    with a positive coefficient, unit values, that lead in noise units)."""
    members = A[:, list(columns)]
    target = residual + members @ weight[list(columns)]
    target = target - target.mean()
    values = _unit_values(members, "or", sharpness)

    def residual_sum(design: np.ndarray) -> tuple[float, np.ndarray]:
        centred = design - design.mean(0)
        coefficient = np.linalg.lstsq(centred, target, rcond=None)[0]
        rest = target - centred @ coefficient
        return float(rest @ rest), coefficient

    total = float(target @ target)
    additive, _ = residual_sum(members)
    alone, coefficient = residual_sum(values[:, None])
    scale = max(noise, 1e-12)
    lead = (additive - alone) / scale
    return (total - alone) / scale, lead >= margin and coefficient[0] > 0, values, lead


class _Candidate(NamedTuple):
    """A set the unit search scores: its F, member columns, logic, unit values per cell, the test
    that accepted it, and that test's evidence for the set's logic (a grown set is judged by the
    same test and must raise the evidence)."""

    f: float
    columns: tuple[int, ...]
    logic: str
    values: np.ndarray
    test: str
    evidence: float


def _or_verdict(A: np.ndarray, weight: np.ndarray, columns: tuple[int, ...], residual: np.ndarray, noise: float,
                sharpness: float, test: str, margin: float) -> tuple[float, bool, np.ndarray, float]:
    """(F, accepted, unit values, evidence) of ``columns`` as an OR set under one test. The
    evidence is what the test is about: the interaction's F, or parsimony's lead over the
    additive terms. Growing on parsimony's F instead would let a set take in any strong peak,
    such as the gene's promoter: the indicator alone then explains more, though it is no longer
    an OR."""
    if test == "parsimony":
        return _or_parsimony(A, weight, columns, residual, noise, sharpness, margin)
    f_stat, sign, values = _set_score(A, columns, "or", residual, noise, sharpness)
    return f_stat, f_stat > 0 and sign > 0, values, f_stat


def _or_tests(settings: GroupUnitSettings) -> tuple[str, ...]:
    """The tests an OR set may pass: one, or with "either" both."""
    return ("parsimony", "interaction") if settings.or_test == "either" else (settings.or_test,)


def _candidate_pairs(A: np.ndarray, weight: np.ndarray, residual: np.ndarray, noise: float,
                     settings: GroupUnitSettings, sharpness: float) -> list[_Candidate]:
    """Every pair of the strongest peaks, and every OR triple of the ``triples_top_k`` strongest,
    as candidates, best first. Given its members' linear terms a pair's OR and AND indicators span
    the same interaction (OR = x_a + x_b - AND), so one is tested and the sign names it:
    super-additive is AND, sub-additive is OR (redundant) where the interaction test judges ORs.
    A triple is kept only as an OR set; a set two tests accept is kept once, at its higher F."""
    ranked = [int(i) for i in np.argsort(-weight, kind="stable") if weight[i] > 0]
    strongest = ranked[: settings.top_k]
    tests = _or_tests(settings)
    best: dict[tuple[tuple[int, ...], str], _Candidate] = {}

    def offer(candidate: _Candidate) -> None:
        key = (candidate.columns, candidate.logic)
        if key not in best or candidate.f > best[key].f:
            best[key] = candidate

    for columns in itertools.combinations(strongest, 2):
        f_stat, sign, both = _set_score(A, columns, "and", residual, noise, sharpness)
        if f_stat <= 0:
            continue
        if sign > 0:
            offer(_Candidate(f_stat, tuple(sorted(columns)), "and", both, "interaction", f_stat))
        elif "interaction" in tests:
            offer(_Candidate(f_stat, tuple(sorted(columns)), "or", _unit_values(A[:, list(columns)], "or", sharpness),
                             "interaction", f_stat))
    for test in tests:
        # The interaction test's OR pairs come from the AND score above.
        sizes = (((2, settings.top_k), (3, settings.triples_top_k)) if test == "parsimony"
                 else ((3, settings.triples_top_k),))
        for size, top in sizes:
            for columns in itertools.combinations(ranked[:top], size):
                f_stat, accepted, values, evidence = _or_verdict(A, weight, columns, residual, noise, sharpness, test,
                                                                 settings.or_margin)
                if accepted:
                    offer(_Candidate(f_stat, tuple(sorted(columns)), "or", values, test, evidence))
    return sorted(best.values(), key=lambda c: -c.f)


def _grow(A: np.ndarray, weight: np.ndarray, residual: np.ndarray, noise: float, found: _Candidate,
          settings: GroupUnitSettings, sharpness: float) -> _Candidate:
    """Add members to a found set while one more raises its evidence by ``grow_f`` (up to
    ``max_set``): the third member of an OR group alone matters only where the other two are
    closed, too rarely to rank among the strongest peaks, but it completes the group's indicator."""
    others = [int(j) for j in np.flatnonzero(weight > 0)]
    while len(found.columns) < settings.max_set:
        best = None
        for j in others:
            if j in found.columns:
                continue
            grown = tuple(sorted((*found.columns, j)))
            if found.logic == "or":  # the test that accepted the set judges it grown
                score, fits, grown_values, evidence = _or_verdict(A, weight, grown, residual, noise, sharpness,
                                                                  found.test, settings.or_margin)
            else:
                score, sign, grown_values = _set_score(A, grown, "and", residual, noise, sharpness)
                fits, evidence = sign > 0, score  # still super-additive
            if fits and (best is None or evidence > best.evidence):
                best = _Candidate(score, grown, found.logic, grown_values, found.test, evidence)
        if best is None or best.evidence < found.evidence + settings.grow_f:
            break
        found = best
    return found


def _penalised_fit(A: np.ndarray, target: np.ndarray, penalty: np.ndarray,
                   used: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Ridge with a per-column penalty on centred columns, on the ``used`` columns only (the
    others get weight 0): (weights, intercept, residual sum of squares)."""
    used = np.ones(A.shape[1], bool) if used is None else used
    centre, mean = A.mean(0), target.mean()
    Ac = A[:, used] - centre[used]
    w = np.zeros(A.shape[1])
    w[used] = np.linalg.solve(Ac.T @ Ac + np.diag(penalty[used]), Ac.T @ (target - mean))
    residual = target - mean - Ac @ w[used]
    return w, float(mean - centre @ w), float(residual @ residual)


def _fit_with_units(A: np.ndarray, target: np.ndarray, chosen: list, alpha: float,
                    settings: GroupUnitSettings) -> tuple[np.ndarray, float, list[bool]]:
    """A gene's ridge refitted with its units as extra columns; each unit's members lose their
    linear terms unless these pass ``member_f`` (a partial F on the training error). Returns
    (weights over links + units, intercept, per unit whether its members kept linear terms)."""
    n_links = A.shape[1]
    design = np.hstack([A, np.column_stack([c.values for c in chosen])])
    penalty = np.r_[np.full(n_links, alpha), np.full(len(chosen), alpha * settings.unit_penalty)]
    used = np.ones(design.shape[1], bool)
    w, b, rss = _penalised_fit(design, target, penalty, used)
    kept_linear = []
    for unit in chosen:
        trial = used.copy()
        trial[list(unit.columns)] = False
        w_trial, b_trial, rss_trial = _penalised_fit(design, target, penalty, trial)
        noise = rss / max(len(target) - int(used.sum()) - 1, 1)
        if (rss_trial - rss) / len(unit.columns) / max(noise, 1e-12) < settings.member_f:
            used, w, b, rss = trial, w_trial, b_trial, rss_trial
            kept_linear.append(False)
        else:
            kept_linear.append(True)
    return w, b, kept_linear


def fit_group_units(model, data, peak: np.ndarray, *, gene: np.ndarray, ridge, residual_train: np.ndarray,
                    residual_val: np.ndarray, settings: GroupUnitSettings | None = None) -> dict:
    """Search, fit and install up to ``model.config.cis_units`` group units per gene.

    ``peak``/``gene`` are the cis links in the order of ``ridge.weight``; residuals are the deep
    path's (standardised) on training and validation cells. Writes the model's cis weights
    (linear and unit) and returns a summary with the kept units per gene.

    Parameters
    ----------
    model
        The trained :class:`grids.surrogate.model.Surrogate`; ``config.cis_units``,
        ``config.cis_sharpness`` and ``config.n_genes`` are read, and its cis links, linear weights,
        biases and unit weights are overwritten in place.
    data
        The paired data (:class:`grids.surrogate.data.PairedData`); its ``train`` and ``val`` rows
        of ``atac`` are used.
    peak
        Peak index of each cis link.
    gene
        Gene index of each cis link, aligned with ``peak``.
    ridge
        The per-gene ridge of :func:`grids.surrogate.data.fit_cis_ridge` on these links: its weights
        and biases start each gene's search, and its ``alpha`` is the refit's penalty.
    residual_train
        Training cells x genes: the deep path's standardised residual.
    residual_val
        Validation cells x genes: the same on validation cells.
    settings
        How units are searched and fitted; None: :class:`GroupUnitSettings` defaults.

    Returns
    -------
    dict
        ``units_per_gene``, ``genes_tested`` (genes with at least two links), ``genes_with_units``,
        ``or_units``, ``and_units``, and ``units``: one dict per kept unit with ``gene``, ``unit``,
        ``logic``, ``peaks`` (peak indices), ``f``, ``weight``, ``members_linear``, ``test``,
        ``validation_mse_ridge`` and ``validation_mse_units``. A gene without units keeps its ridge
        weights.
    """
    settings = settings or GroupUnitSettings()
    n_units, sharpness = model.config.cis_units, model.config.cis_sharpness
    train, val = data.rows("train"), data.rows("val")
    X_train, X_val = data.atac[train].tocsc(), data.atac[val].tocsc()
    linear, bias = ridge.weight.astype(np.float64).copy(), ridge.bias.astype(np.float64).copy()
    unit_weight = np.zeros((len(peak), n_units))
    unit_bias = np.zeros((model.config.n_genes, n_units))
    unit_out = np.zeros((model.config.n_genes, n_units))
    order = np.argsort(gene, kind="stable")
    bounds = np.searchsorted(gene[order], np.arange(model.config.n_genes + 1))
    kept: list[dict] = []
    tested = 0
    for g in range(model.config.n_genes):
        links = order[bounds[g] : bounds[g + 1]]
        if len(links) < 2:
            continue
        A = X_train[:, peak[links]].toarray().astype(np.float64)
        A_val = X_val[:, peak[links]].toarray().astype(np.float64)
        w = linear[links]
        residual = residual_train[:, g] - A @ w - bias[g]
        tested += 1
        noise = residual @ residual / max(len(residual) - 1, 1)
        chosen: list[_Candidate] = []
        for candidate in _candidate_pairs(A, w, residual, noise, settings, sharpness):
            if candidate.f < settings.min_f or len(chosen) == n_units:
                break
            if all(not set(candidate.columns) & set(c.columns) for c in chosen):
                grown = _grow(A, w, residual, noise, candidate, settings, sharpness)
                if all(not set(grown.columns) & set(c.columns) for c in chosen):
                    chosen.append(grown)
        if not chosen:
            continue
        features_val = np.column_stack([_unit_values(A_val[:, list(c.columns)], c.logic, sharpness) for c in chosen])
        w_new, b_new, kept_linear = _fit_with_units(A, residual_train[:, g], chosen, ridge.alpha, settings)
        before = np.mean((residual_val[:, g] - A_val @ w - bias[g]) ** 2)
        after = np.mean((residual_val[:, g] - np.hstack([A_val, features_val]) @ w_new - b_new) ** 2)
        if settings.validate and after >= before:  # validation cells do not back the units: the ridge stays
            continue
        linear[links], bias[g] = w_new[: len(links)], b_new
        for h, (f_stat, columns, logic, _, test, _) in enumerate(chosen):
            unit_weight[links[list(columns)], h] = UNIT_SLOPE
            unit_bias[g, h] = unit_offset(len(columns), logic)
            unit_out[g, h] = w_new[len(links) + h]
            kept.append({"gene": data.genes[g], "unit": h, "logic": logic,
                         "peaks": [int(peak[links[c]]) for c in columns],
                         "f": float(f_stat), "weight": float(w_new[len(links) + h]),
                         "members_linear": kept_linear[h], "test": test,
                         "validation_mse_ridge": float(before), "validation_mse_units": float(after)})
    # Install in the model's stored link order (set_cis_links sorts links by peak, then gene).
    model.set_cis_links(peak, gene, weight=linear, bias=bias)
    stored = np.lexsort((gene, peak))
    with torch.no_grad():
        model.cis_unit_weight.copy_(torch.from_numpy(unit_weight[stored].astype(np.float32)))
        model.cis_unit_bias.copy_(torch.from_numpy(unit_bias.astype(np.float32)))
        model.cis_unit_out.copy_(torch.from_numpy(unit_out.astype(np.float32)))
    genes_with = len({k["gene"] for k in kept})
    logics = {logic: sum(k["logic"] == logic for k in kept) for logic in ("or", "and")}
    log.info("cis path: group units kept for %d of %d genes (%d OR, %d AND units)", genes_with, tested,
             logics["or"], logics["and"])
    return {"units_per_gene": n_units, "genes_tested": tested, "genes_with_units": genes_with,
            "or_units": logics["or"], "and_units": logics["and"], "units": kept}
