"""Explanation targets and their shards, known when Snakemake parses the workflow (no torch here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ExplainTask", "explain_tasks", "shard_tasks", "file_name_clash", "file_stem", "set_target", "SET_PREFIX"]

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


def explain_tasks(targets, set_cell_types: list[str], top_n: int, per_gene: bool = True,
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
