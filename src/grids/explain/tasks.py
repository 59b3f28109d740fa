"""Explanation targets and their shards, known when Snakemake parses the workflow (no torch here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .methods import method_only_settings

__all__ = ["ExplainTask", "explain_tasks", "shard_tasks", "shard_settings", "file_name_clash", "file_stem",
           "cell_type_stem",
           "set_target", "SET_PREFIX", "SHARD_LAYOUT_SETTINGS", "METHOD_ONLY_SETTINGS"]

SET_PREFIX = "top"  # per-cell-type targets are named top{N}: the type's N most expressed genes


@dataclass(frozen=True)
class ExplainTask:
    """One subset search: a gene in a cell type, or a cell type's top-N gene set."""

    cell_type: str
    target: str
    kind: str = "gene"  # "gene" or "set" (the cell type's top-N expressed genes)

    @property
    def stem(self) -> str:
        return file_stem(self.cell_type, self.target)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def file_stem(cell_type: str, target: str) -> str:
    """``{cell_type}__{target}`` with characters unsafe in file names replaced by ``_``."""
    return f"{_UNSAFE.sub('_', cell_type)}__{_UNSAFE.sub('_', target)}"


def cell_type_stem(cell_type: str) -> str:
    """A cell type as a file name: characters unsafe in file names replaced by ``_``."""
    return _UNSAFE.sub("_", cell_type)


def file_name_clash(pairs) -> str:
    """Why two of these (cell type, target) pairs would share a file name, or "" when none do.

    ``file_stem`` maps ``L2/3`` and ``L2_3`` (or ``B cell`` and ``B_cell``) alike; their results
    would overwrite each other, and readers keyed by file name would merge them.
    """
    pairs = list(dict.fromkeys((str(c), str(t)) for c, t in pairs))
    for what, keys, name in (
        ("cell-type labels", list(dict.fromkeys(c for c, _ in pairs)), lambda c: _UNSAFE.sub("_", c)),
        ("targets", pairs, lambda p: file_stem(*p)),
    ):
        seen: dict[str, object] = {}
        for key in keys:
            first = seen.setdefault(name(key), key)
            if first != key:
                return (f"{what} {first!r} and {key!r} map to the same file name {name(key)!r} (file names "
                        "keep letters, digits and . _ + -, other characters become _); rename one of them")
    return ""


def set_target(top_n: int) -> str:
    """The target name of a cell type's top-N gene set, e.g. ``top100``."""
    return f"{SET_PREFIX}{top_n}"


def explain_tasks(targets, set_cell_types: list[str], top_n: int, *, per_gene: bool = True,
                  per_cell_type: bool = True) -> list[ExplainTask]:
    """Per-gene tasks from the targets table (columns cell_type, gene), then one top-N task per
    cell type; duplicates dropped, order kept. Two cell types or tasks that would share a file
    name are a ValueError naming both."""
    tasks: list[ExplainTask] = []
    if per_gene:
        tasks += [ExplainTask(str(c), str(g)) for c, g in zip(targets["cell_type"], targets["gene"])]
    if per_cell_type:
        tasks += [ExplainTask(str(c), set_target(top_n), "set") for c in set_cell_types]
    clash = file_name_clash((t.cell_type, t.target) for t in tasks)
    if clash:
        raise ValueError(f"explanation targets: {clash}")
    return list(dict.fromkeys(tasks))


def shard_tasks(tasks: list[ExplainTask], shard_size: int) -> list[list[ExplainTask]]:
    """Consecutive groups of ``shard_size`` tasks: one job each."""
    return [tasks[i : i + shard_size] for i in range(0, len(tasks), shard_size)]


# What an explain shard job is given of the explain settings, and so what reruns it (Snakemake
# reruns a job whose params change), as grids.explain.stage.run_explain_shard reads them.
# These keys decide which tasks exist and how they are grouped into jobs, not a selection: a
# shard's own task list (its tasks param) records their effect, and device is a param of its own.
# genes and genes_cell_types choose the genome-wide tasks (grids.explain.genome_wide), whose shards
# record them in their own task lists.
SHARD_LAYOUT_SETTINGS = frozenset({"methods", "shard_size", "per_gene", "per_cell_type", "cell_types", "device",
                                   "genes", "genes_cell_types"})
# Keys only some methods read (each method's ``reads`` in grids.explain.methods); the other
# methods' shards are given none of them. Every other key (L, beta, and any key added later)
# goes to every method: a new setting can cost a rerun, never a stale result.
METHOD_ONLY_SETTINGS = {
    **method_only_settings(),
    "top_n_genes": (),  # gene-set tasks only; see shard_settings
}


def shard_settings(method: str, settings, tasks: list[ExplainTask]) -> dict:
    """The explain settings (config key ``explain``) that decide ``method``'s selections for these
    tasks, in key order: a shard's params hold only these, so removing or adding a method, or
    changing a setting of another method, reruns none of this method's shards."""
    has_sets = any(task.kind == "set" for task in tasks)
    keep = {}
    for key in sorted(settings):
        if key in SHARD_LAYOUT_SETTINGS:
            continue
        if key == "top_n_genes":
            if has_sets:  # a gene task ignores it (a set task's name, top{N}, records it too)
                keep[key] = settings[key]
            continue
        if key in METHOD_ONLY_SETTINGS and method not in METHOD_ONLY_SETTINGS[key]:
            continue
        keep[key] = settings[key]
    return keep
