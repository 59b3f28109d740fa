"""The registry of explanation methods: what each runs, and what the workflow needs to know of it.

One entry per method. The explain stage runs a method through its entry; the rules read
``gpu`` (whether a shard job asks for a GPU) and ``threads``; the shard params read ``reads``
(the explain settings only some methods use, so changing one reruns only those methods'
shards); and the config schema's method list is checked against the registry by the tests.
Adding a method is one entry here plus its function.

This module imports neither torch nor the methods themselves (each ``run`` imports what it
needs when called), so Snakefiles can read the registry at parse time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ExplainMethod", "MethodInput", "METHODS", "method_only_settings", "gpu_methods"]

# Settings of the GRIDS search (GridsSettings), in the config's explain block.
_SEARCH_SETTINGS = ("k", "steps", "batch_size", "init", "patience", "moves", "pair_pool")


@dataclass
class MethodInput:
    """What a method is given for one target: the objective, its training and validation cells,
    the targets' cis-window peaks and mean expression, the settings, and a per-target cache
    (a search's pair proposals are the same at every L)."""

    objective: Any  # grids.explain.core.SubsetObjective
    train: Any  # CellSet
    validation: Any  # CellSet or None
    nearby: np.ndarray  # peaks within explain.window of the targets' TSS
    expression: np.ndarray  # the targets' mean expression per training cell
    settings: Mapping[str, Any]
    seed: int
    window: int
    description: str = ""
    progress: bool = False
    cache: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExplainMethod:
    """One explanation method.

    ``kind``: ``search`` runs once per L and returns the L peaks it chose (GRIDS);
    ``ranking`` runs once, at the largest L, and each L reports that ranking's first L peaks.
    ``short_ranking``: what a ranking with fewer than L peaks is - ``not run`` (SAGE and LIME
    rank only the peaks near the targets) or ``keep`` (reported as it is).
    """

    name: str
    run: Callable[[MethodInput, int], Any]  # (input, L) -> grids.explain.search.Selection
    kind: str
    gpu: bool  # runs the surrogate many times, so a shard gains from a GPU
    reads: tuple[str, ...] = ()  # explain settings this method reads beyond the shared ones (L, beta)
    threads: int = 2  # CPU threads of one shard job
    short_ranking: str = "keep"
    summary: str = ""
    # A search method's plan: (input, L) -> a search (grids.explain.search.drive) that yields its
    # questions to the objective, so that a shard runs the searches of all its targets of one
    # cell type together. It raises NotRun as ``run`` does.
    plan: Callable[[MethodInput, int], Any] | None = None


def _grids_plan(restricted: bool) -> Callable[[MethodInput, int], Any]:
    def plan(given: MethodInput, L: int):
        from .baselines import NotRun
        from .search import GridsSettings, grids_steps, search_candidates, sufficient_order

        settings = given.settings
        search = GridsSettings(L=L, k=int(settings.get("k", 32)), steps=int(settings.get("steps", 500)),
                               batch_size=int(settings.get("batch_size", 64)), seed=given.seed,
                               init=str(settings.get("init", "saliency")), patience=int(settings.get("patience", 2)),
                               moves=str(settings.get("moves", "pairs")), pair_pool=int(settings.get("pair_pool", 12)))
        # grids_cis: candidates restricted to the targets' cis window.
        allowed = given.nearby if restricted else None
        if allowed is not None and len(search_candidates(given.train, allowed)) < L:
            raise NotRun(f"fewer than L = {L} open peaks within {given.window} bp of the targets")
        if "sufficient" not in given.cache and search.moves == "pairs":
            given.cache["sufficient"] = sufficient_order(given.objective, given.train, given.nearby, allowed=allowed,
                                                         seed=given.seed)
        return grids_steps(given.objective, given.train, search, validation=given.validation, window=given.nearby,
                           allowed=allowed, sufficient=given.cache.get("sufficient"), progress=given.progress,
                           description=given.description)
    return plan


def _run_plan(plan: Callable[[MethodInput, int], Any]) -> Callable[[MethodInput, int], Any]:
    """A search method's one-target run: its plan driven alone."""
    def run(given: MethodInput, L: int):
        from .search import drive

        return drive([plan(given, L)])[0]
    return run


def _random(given: MethodInput, L: int):
    from .baselines import random_selection

    return random_selection(given.objective, given.train, L, seed=given.seed)


def _saliency(given: MethodInput, L: int):
    from .baselines import saliency

    return saliency(given.objective, given.train, L)


def _smoothgrad(given: MethodInput, L: int):
    from .baselines import smoothgrad

    return smoothgrad(given.objective, given.train, L, seed=given.seed)


def _fimap(given: MethodInput, L: int):
    from .baselines import fimap

    return fimap(given.objective, given.train, L, seed=given.seed)


def _correlation(given: MethodInput, L: int):
    from .baselines import correlation

    return correlation(given.objective, given.train, L, expression=given.expression, nearby=given.nearby)


def _sage(given: MethodInput, L: int):
    from .baselines import sage_selection

    return sage_selection(given.objective, given.train, L, nearby=given.nearby, seed=given.seed,
                          max_features=int(given.settings.get("sage_max_peaks", 256)))


def _lime(given: MethodInput, L: int):
    from .baselines import lime_selection

    return lime_selection(given.objective, given.train, L, nearby=given.nearby, seed=given.seed,
                          max_features=int(given.settings.get("lime_max_peaks", 256)))


_ENTRIES = [
    ExplainMethod("grids", _run_plan(_grids_plan(False)), "search", gpu=True,
                  reads=(*_SEARCH_SETTINGS, "seed", "window"), summary="GRIDS over every open peak",
                  plan=_grids_plan(False)),
    ExplainMethod("grids_cis", _run_plan(_grids_plan(True)), "search", gpu=True,
                  reads=(*_SEARCH_SETTINGS, "seed", "window"),
                  summary="GRIDS restricted to the targets' cis window (explain.window)", plan=_grids_plan(True)),
    ExplainMethod("random", _random, "ranking", gpu=False, reads=("seed",), summary="a seeded random subset"),
    ExplainMethod("saliency", _saliency, "ranking", gpu=True, summary="the best first-order gains"),
    ExplainMethod("smoothgrad", _smoothgrad, "ranking", gpu=True, reads=("seed",),
                  summary="gains averaged over noisy copies of the input"),
    ExplainMethod("fimap", _fimap, "ranking", gpu=True, reads=("seed",), summary="a learned soft mask (FIMAP)"),
    ExplainMethod("correlation", _correlation, "ranking", gpu=False, reads=("window",),
                  summary="peak-expression correlation within the cis window"),
    # SAGE and LIME sample many coalitions of one target's cells in one process: one thread
    # each, so two shards share the cores.
    ExplainMethod("sage", _sage, "ranking", gpu=True, reads=("seed", "window", "sage_max_peaks"), threads=1,
                  short_ranking="not run", summary="SAGE values (sage-importance) of the peaks near the targets"),
    ExplainMethod("lime", _lime, "ranking", gpu=True, reads=("seed", "window", "lime_max_peaks"), threads=1,
                  short_ranking="not run", summary="LIME weights of the peaks near the targets"),
]
METHODS: dict[str, ExplainMethod] = {method.name: method for method in _ENTRIES}


def method_only_settings() -> dict[str, tuple[str, ...]]:
    """Explain setting -> the methods that read it, for every setting some methods ignore.

    Returns
    -------
    dict
        Setting name -> names of the registered methods that read it, in registry order.
    """
    keys = dict.fromkeys(key for method in _ENTRIES for key in method.reads)
    return {key: tuple(m.name for m in _ENTRIES if key in m.reads) for key in keys}


def gpu_methods() -> set[str]:
    """The methods whose shard jobs use a GPU when one is configured.

    Returns
    -------
    set of str
        Names of the registered methods marked ``gpu``.
    """
    return {name for name, method in METHODS.items() if method.gpu}
