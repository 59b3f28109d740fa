"""Explanation targets and their shards, known when Snakemake parses the workflow (no torch here)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .methods import method_only_settings

__all__ = ["ExplainTask", "explain_tasks", "shard_tasks", "shard_settings", "file_name_clash", "file_stem",
           "cell_type_stem", "target_genes",
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
    """``{cell_type}__{target}`` with characters unsafe in file names replaced by ``_``.

    Parameters
    ----------
    cell_type
        Cell-type name.
    target
        Target name (a gene, or a set such as ``top100``).

    Returns
    -------
    str
        The stem; letters, digits and ``. _ + -`` are kept.
    """
    return f"{_UNSAFE.sub('_', cell_type)}__{_UNSAFE.sub('_', target)}"


def cell_type_stem(cell_type: str) -> str:
    """A cell type as a file name: characters unsafe in file names replaced by ``_``.

    Parameters
    ----------
    cell_type
        Cell-type name.

    Returns
    -------
    str
        The name with letters, digits and ``. _ + -`` kept.
    """
    return _UNSAFE.sub("_", cell_type)


def file_name_clash(pairs) -> str:
    """Why two of these (cell type, target) pairs would share a file name, or "" when none do.

    ``file_stem`` maps ``L2/3`` and ``L2_3`` (or ``B cell`` and ``B_cell``) alike; their results
    would overwrite each other, and readers keyed by file name would merge them.

    Parameters
    ----------
    pairs
        Iterable of (cell type, target); repeated pairs are one.

    Returns
    -------
    str
        A message naming the first clash found: two cell-type labels, else two (cell type, target)
        pairs, that share a file name; "" when none do.
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
    """The target name of a cell type's top-N gene set, e.g. ``top100``.

    Parameters
    ----------
    top_n
        Number of the cell type's most expressed genes in the set.

    Returns
    -------
    str
        ``{SET_PREFIX}{top_n}``.
    """
    return f"{SET_PREFIX}{top_n}"


def explain_tasks(targets, set_cell_types: list[str], top_n: int, *, per_gene: bool = True,
                  per_cell_type: bool = True) -> list[ExplainTask]:
    """Per-gene tasks from the targets table (columns cell_type, gene), then one top-N task per
    cell type; duplicates dropped, order kept. Two cell types or tasks that would share a file
    name are a ValueError naming both.

    Parameters
    ----------
    targets
        Targets table with columns cell_type, gene (config/targets.tsv).
    set_cell_types
        Cell types that get a top-N gene-set task.
    top_n
        Size of the gene sets (the name ``top{N}``, :func:`set_target`).
    per_gene
        Make the per-gene tasks.
    per_cell_type
        Make the gene-set tasks.

    Returns
    -------
    list of ExplainTask
        The per-gene tasks in table order, then the set tasks in the order of ``set_cell_types``.

    Raises
    ------
    ValueError
        When two cell types or two tasks would share a file name (:func:`file_name_clash`).
    """
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
    """Consecutive groups of ``shard_size`` tasks: one job each.

    Parameters
    ----------
    tasks
        Tasks in order.
    shard_size
        Tasks per shard; the last shard may hold fewer.

    Returns
    -------
    list of list of ExplainTask
        The shards in task order.
    """
    return [tasks[i : i + shard_size] for i in range(0, len(tasks), shard_size)]


def target_genes(task: ExplainTask, genes: Sequence[str], mean_expression: np.ndarray, *, top_n: int,
                 mito_prefix: str = "MT-") -> list[int]:
    """Gene indices of a task: the gene itself, or the cell type's top-N mean expressed genes
    (mitochondrial genes left out). A gene the model lacks is an error with close matches.

    Parameters
    ----------
    task
        The task: a gene, or a cell type's gene set.
    genes
        The surrogate's genes, in order.
    mean_expression
        Mean expression of each of ``genes`` over the cell type's training cells (read for a gene set).
    top_n
        Size of a gene set.
    mito_prefix
        Name prefix of the mitochondrial genes left out of a gene set ('' leaves none out).

    Returns
    -------
    list of int
        Indices into ``genes``: the one gene, or up to ``top_n`` genes, most expressed first (ties in
        gene order).

    Raises
    ------
    ValueError
        When a gene task's gene is not in ``genes``.
    """
    if task.kind == "gene":
        if task.target not in genes:
            close = difflib.get_close_matches(task.target, list(genes), n=5)
            raise ValueError(f"target gene {task.target!r} (cell type {task.cell_type!r}) is not in the surrogate's "
                             f"{len(genes)} genes" + (f"; close matches: {', '.join(close)}" if close else ""))
        return [list(genes).index(task.target)]
    eligible = np.array([not g.startswith(mito_prefix) for g in genes]) if mito_prefix else np.ones(len(genes), bool)
    order = np.argsort(-np.where(eligible, mean_expression, -np.inf), kind="stable")
    return order[: min(top_n, int(eligible.sum()))].tolist()


# What an explain shard job is given of the explain settings, and so what reruns it (Snakemake
# reruns a job whose params change), as grids.workflow.stages.explain.run_explain_shard reads them.
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
    changing a setting of another method, reruns none of this method's shards.

    Parameters
    ----------
    method
        The explain method of the shard.
    settings
        The explain settings (mapping).
    tasks
        The shard's tasks; ``top_n_genes`` is kept only when one is a gene set.

    Returns
    -------
    dict
        The kept settings, keys sorted: neither :data:`SHARD_LAYOUT_SETTINGS` nor
        :data:`METHOD_ONLY_SETTINGS` keys of other methods.
    """
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
