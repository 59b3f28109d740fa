"""The explain rules: one shard of tasks for one method, and the per-target files from the shards."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grids.explain.methods import METHODS, ExplainMethod, MethodInput
from grids.explain.shards import SELECTION_COLUMNS, SHARD_COLUMNS, read_shards
from grids.explain.tasks import ExplainTask, target_genes
from grids.genome import first_tss, tss_map
from grids.io import atomic_output

__all__ = ["run_explain_shard", "read_shards", "write_target_files", "SELECTION_COLUMNS"]

log = logging.getLogger(__name__)


def _first(objective, train, ranking, L: int, method: ExplainMethod):
    """The first L peaks of a ranking, scored on the training cells. A ranking shorter than L
    is 'not run' for a method that says so (SAGE and LIME rank only the peaks near the
    targets); the others (correlation) keep what they have."""
    from grids.explain import baselines
    from grids.explain.search import Selection

    if len(ranking.peaks) < L and method.short_ranking == "not run":
        raise baselines.NotRun(f"only {len(ranking.peaks)} candidate peaks near the targets, fewer than L = {L}")
    peaks, scores = ranking.peaks[:L], ranking.scores[:L]
    return Selection(peaks, scores, objective.loss(train, peaks))


def run_explain_shard(
    *,
    model: str,
    paired: str,
    gtf: str,
    tasks: Sequence[ExplainTask],
    method: str,
    settings: Mapping[str, Any],
    mito_prefix: str,
    out_table: str,
    out_meta: str,
    device: str = "cpu",
    progress: bool = True,
    resume: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Run ``method`` for every task of the shard and every L; write one long table.

    With ``resume`` (a JSON file beside the outputs), each finished task is recorded there, so
    a shard that was interrupted (Ctrl-C, preemption, a killed node) redoes only its unfinished
    tasks when rerun. Tasks are seeded independently, so a resumed shard equals an uninterrupted
    one. The record is ignored when the model, data, method, settings or tasks changed, and is
    removed once the shard's outputs are written.

    Parameters
    ----------
    model
        The surrogate (``model.pt``).
    paired
        The paired data (``paired.h5mu``) it was trained on.
    gtf
        The GTF that gives the TSSs of the targets' cis windows.
    tasks
        The shard's tasks.
    method
        The explain method, a key of :data:`grids.explain.methods.METHODS`.
    settings
        The explain settings (config key ``explain``) and the method's own; L defaults to [10, 128],
        seed to 0, top_n_genes to 100, window to 500000 bp and beta to 0.
    mito_prefix
        Name prefix of the mitochondrial genes left out of a gene set.
    out_table
        TSV of the selections.
    out_meta
        JSON of each target's genes (by file stem) and the search curves (by ``L{L}/{stem}``).
    device
        'cpu', 'cuda' or 'auto' (CUDA when available).
    progress
        Show progress bars.
    resume
        The JSON record of finished tasks; no record when None.
    threads
        Torch threads for the job; torch's default when None or 0.

    Returns
    -------
    pandas.DataFrame
        The table written: columns :data:`grids.explain.shards.SHARD_COLUMNS`, one row per selected
        peak (rank 1 first), tasks in order, L ascending; a task the method did not run on at an L has
        one row with status 'not run: ...', rank 0 and peak_index -1.

    Raises
    ------
    ValueError
        When the method is unknown, the surrogate does not match the data, a task's cell type is not in
        the data or has no training cells, the largest L exceeds the peaks open in a cell type's training
        cells, or a target gene is not modelled.
    grids.surrogate.train.TrainingError
        When ``device`` is 'cuda' and torch sees no CUDA device.
    """
    from grids.surrogate import load_paired, load_surrogate, resolve_device
    spec = METHODS.get(method)
    if spec is None:
        raise ValueError(f"unknown explain method {method!r}; known: {', '.join(METHODS)}")
    if threads:
        import torch

        torch.set_num_threads(max(1, int(threads)))  # the job's share of the cores, not all of them
    saved = load_surrogate(model, device=str(resolve_device(device, "explain.device")))
    data = load_paired(paired)
    saved.check_compatible(list(map(str, data.peaks.index)), data.genes, source=paired)
    tss = first_tss(gtf, data.peaks["chrom"].astype(str).unique())
    Ls = sorted(int(L) for L in settings.get("L", [10, 128]))
    seed = int(settings.get("seed", 0))
    top_n = int(settings.get("top_n_genes", 100))
    window = int(settings.get("window", 500_000))
    beta = float(settings.get("beta", 0.0))
    by_task: dict[str, list[dict]] = {}
    curves: dict[str, Any] = {}
    members: dict[str, list[str]] = {}
    record = _ShardRecord(resume, _shard_fingerprint(model, paired, method, settings, tasks)) if resume else None
    todo = []
    for task in tasks:
        if record is not None and task.stem in record.done:
            finished = record.done[task.stem]
            by_task[task.stem] = finished["rows"]
            curves.update(finished["curves"])
            members[task.stem] = finished["members"]
        else:
            todo.append(task)
    # A search method runs all of a cell type's targets, at every L, in one lockstep pass
    # (grids.explain.search.drive): they share their cells, and the decoder's shared layers
    # answer all their questions at once. Ranking methods run one target at a time.
    groups = _cell_type_groups(todo) if spec.plan is not None else [[task] for task in todo]
    shared_cells: dict[tuple[str, str], Any] = {}
    for group in groups:
        givens = []
        for task in group:
            genes, given = _method_input(task, data, tss, saved.model, beta, settings, seed, window, Ls, top_n,
                                         mito_prefix, shared_cells, paired, progress)
            members[task.stem] = [data.genes[g] for g in genes]
            givens.append(given)
        outcomes = _search_group(spec, givens, Ls, progress) if spec.plan is not None else \
            [_run_one(spec, given, Ls) for given in givens]
        for task, genes, per_L in zip(group, (members[t.stem] for t in group), outcomes):
            task_rows = []
            for L, selection, status, seconds in per_L:
                common = {"method": method, "L": L, "cell_type": task.cell_type, "target": task.target,
                          "kind": task.kind, "n_genes": len(genes), "seconds": seconds}
                if selection is None:
                    log.warning("%s %s L=%d %s", method, task.stem, L, status)
                    task_rows.append({**common, "train_loss": np.nan, "rank": 0, "peak_index": -1, "chrom": "",
                                      "start": -1, "end": -1, "score": np.nan, "status": status})
                    continue
                log.info("%s %s L=%d: train objective %.4g in %.1f s", method, task.stem, L, selection.train_loss,
                         seconds)
                if spec.kind == "search":
                    curves[f"L{L}/{task.stem}"] = selection.curve
                for rank, (peak, score) in enumerate(zip(selection.peaks, selection.scores), start=1):
                    task_rows.append({**common, "train_loss": selection.train_loss, "rank": rank,
                                      "peak_index": int(peak), "chrom": str(data.peaks["chrom"].iloc[peak]),
                                      "start": int(data.peaks["start"].iloc[peak]),
                                      "end": int(data.peaks["end"].iloc[peak]), "score": float(score),
                                      "status": status})
            by_task[task.stem] = task_rows
            if record is not None:
                record.add(task.stem, task_rows, {k: v for k, v in curves.items() if k.endswith(f"/{task.stem}")},
                           members[task.stem])
        shared_cells.clear()
    rows = [row for task in tasks for row in by_task[task.stem]]
    table = pd.DataFrame(rows, columns=SHARD_COLUMNS)
    with atomic_output(out_table) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    with atomic_output(out_meta) as tmp:
        tmp.write_text(json.dumps({"genes": members, "curves": curves}) + "\n")
    if record is not None:
        record.remove()
    return table


def _cell_type_groups(tasks: Sequence[ExplainTask]) -> list[list[ExplainTask]]:
    """Tasks grouped by cell type, in the order their cell types first appear."""
    groups: dict[str, list[ExplainTask]] = {}
    for task in tasks:
        groups.setdefault(task.cell_type, []).append(task)
    return list(groups.values())


def _rows(data, task: ExplainTask, split: str, paired: str) -> np.ndarray:
    """The task's cell type's cells of one split; a cell type the data lacks is an error."""
    if task.cell_type not in data.cell_types:
        raise ValueError(f"cell type {task.cell_type!r} is not in {paired} (it has: {', '.join(data.cell_types)})")
    code = data.cell_types.index(task.cell_type)
    rows = np.flatnonzero((data.cell_type == code) & (data.split == split))
    if split == "train" and len(rows) == 0:
        raise ValueError(f"cell type {task.cell_type!r} has no training cells in {paired}; it cannot be explained")
    return rows


def _method_input(task: ExplainTask, data, tss: pd.DataFrame, model, beta: float, settings: Mapping[str, Any],
                  seed: int, window: int, Ls: list[int], top_n: int, mito_prefix: str, shared_cells: dict,
                  paired: str, progress: bool) -> tuple[list[int], MethodInput]:
    """A task's target genes and what a method is given: its objective, its encoded training and
    validation cells (encoded, and checked against L, once per cell type and shared by its
    targets' objectives), the targets' window peaks and mean expression."""
    from grids.explain import baselines
    from grids.explain.core import SubsetObjective

    train_rows, val_rows = _rows(data, task, "train", paired), _rows(data, task, "val", paired)
    rna = data.rna[train_rows]
    genes = target_genes(task, data.genes, rna.mean(0), top_n=top_n, mito_prefix=mito_prefix)
    objective = SubsetObjective(model, np.array(genes), beta=beta)
    cells = {}
    for split, rows in (("train", train_rows), ("val", val_rows)):
        if len(rows) == 0:
            continue
        shared = shared_cells.get((task.cell_type, split))
        cells[split] = objective.cells(shared.X if shared is not None else data.atac[rows], shared=shared)
        shared_cells[(task.cell_type, split)] = cells[split]
        if shared is None and split == "train":
            n_open = int((np.asarray(cells[split].X.getnnz(axis=0)) > 0).sum())
            if Ls[-1] > n_open:
                raise ValueError(f"L = {Ls[-1]} is larger than the {n_open} peaks open in the training cells of "
                                 f"{task.cell_type!r}; lower explain.L")
    nearby = baselines.window_peaks(data.peaks, tss, [data.genes[g] for g in genes], window=window)
    given = MethodInput(objective, cells["train"], cells.get("val"), nearby, rna[:, genes].mean(1), settings, seed,
                        window, progress=progress, description=task.stem)
    return genes, given


def _run_one(spec: ExplainMethod, given: MethodInput, Ls: list[int]) -> list[tuple]:
    """(L, selection or None, status, seconds) per L for one target: a ranking method ranks once,
    at the largest L, and each L reports its first L peaks."""
    from grids.explain import baselines

    out, ranking, stem = [], None, given.description
    for L in Ls:
        started = time.perf_counter()
        try:
            if spec.kind == "search":
                given.description = f"{stem} L{L}"
                selection, status = spec.run(given, L), "ok"
            else:
                if ranking is None:
                    ranking = spec.run(given, Ls[-1])
                selection, status = _first(given.objective, given.train, ranking, L, spec), "ok"
        except baselines.NotRun as reason:
            selection, status = None, f"not run: {reason}"
        out.append((L, selection, status, time.perf_counter() - started))
    given.description = stem
    return out


def _search_group(spec: ExplainMethod, givens: list[MethodInput], Ls: list[int], progress: bool) -> list[list[tuple]]:
    """:func:`_run_one` for a search method over several targets of one cell type, all targets and
    L together; each search's seconds are its share of the group's time."""
    from grids.explain import baselines
    from grids.explain.search import drive

    started = time.perf_counter()
    planned, outcomes = [], [[None] * len(Ls) for _ in givens]
    for i, given in enumerate(givens):
        stem = given.description
        given.progress = False  # one bar for the group (drive's), not one per search
        for j, L in enumerate(Ls):
            given.description = f"{stem} L{L}"
            try:
                planned.append((i, j, spec.plan(given, L)))
            except baselines.NotRun as reason:
                outcomes[i][j] = (L, None, f"not run: {reason}")
            given.description = stem
    selections = drive([search for _, _, search in planned], progress=progress,
                       description=f"{spec.name} {givens[0].train.n_cells} cells" if givens else spec.name)
    for (i, j, _), selection in zip(planned, selections):
        outcomes[i][j] = (Ls[j], selection, "ok")
    share = (time.perf_counter() - started) / max(1, len(givens) * len(Ls))
    return [[(*outcome, share) for outcome in per_L] for per_L in outcomes]


def _shard_fingerprint(model: str, paired: str, method: str, settings: Mapping[str, Any],
                       tasks: Sequence[ExplainTask]) -> str:
    """What a resume record must match: the model's bytes, the paired file, the method, settings, tasks."""
    digest = hashlib.sha256()
    with open(model, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    stat = Path(paired).stat()
    digest.update(json.dumps([str(Path(paired).resolve()), stat.st_size, stat.st_mtime_ns, method,
                              dict(settings), [task.stem for task in tasks]], sort_keys=True, default=str).encode())
    return digest.hexdigest()


class _ShardRecord:
    """The finished tasks of an interrupted shard, kept in a JSON file written atomically after each task."""

    def __init__(self, path: str, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.done: dict[str, dict] = {}
        if self.path.exists():
            try:
                saved = json.loads(self.path.read_text())
            except (OSError, ValueError) as error:
                log.warning("ignoring %s: %s", self.path, error)
                return
            if saved.get("fingerprint") == fingerprint:
                self.done = saved["tasks"]
                log.info("resuming from %s: %d task(s) already done (%s)", self.path, len(self.done),
                         ", ".join(self.done))
            else:
                log.info("ignoring %s: it belongs to another model, data set or settings", self.path)

    def add(self, stem: str, rows: list[dict], curves: dict[str, Any], members: list[str]) -> None:
        self.done[stem] = {"rows": rows, "curves": curves, "members": members}
        with atomic_output(self.path) as tmp:
            tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "tasks": self.done}))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def write_target_files(shard_tables: Sequence[str], shard_meta: Sequence[str], gtf: str, *, out_dir: str,
                       method: str, expected: Sequence[str]) -> None:
    """Split shard tables into ``{out_dir}/L{L}/{stem}.tsv`` plus a BEDPE and a UCSC interact
    track per selection (peak -> target TSS; for a gene set, the nearest member on the peak's
    chromosome), and a curve PNG per GRIDS target. ``expected`` lists ``L{L}/{stem}`` keys.

    Parameters
    ----------
    shard_tables
        The method's shard tables.
    shard_meta
        Their JSON metadata (the genes and curves of each target).
    gtf
        The GTF that gives each gene's TSS.
    out_dir
        The method's results folder.
    method
        The explain method; curves are drawn for 'grids' only.
    expected
        The ``L{L}/{stem}`` keys the shards must hold.

    Raises
    ------
    ValueError
        When a key of ``expected`` has no selection in the shards, or as
        :func:`grids.explain.shards.read_shards`.
    """
    from grids.explain.tasks import file_stem
    from grids.explain.tracks import write_bedpe, write_interact
    from grids.plots import objective_curve

    table, members, curves = read_shards(shard_tables, shard_meta)
    tss = None
    written = set()
    for (L, cell_type, target), group in table.groupby(["L", "cell_type", "target"], sort=False):
        stem = file_stem(str(cell_type), str(target))
        base = Path(out_dir) / f"L{L}" / stem
        selection = group[SELECTION_COLUMNS]
        with atomic_output(f"{base}.tsv") as tmp:
            selection.to_csv(tmp, sep="\t", index=False)
        if tss is None:
            tss = tss_map(gtf)  # every chromosome: a gene's TSS may lie away from its selected peaks
        genes = members.get(stem, [str(target)])
        ok = selection[selection["status"] == "ok"]
        write_bedpe(ok, genes, tss, path=f"{base}.bedpe", name=f"{method} L{L} {cell_type} {target}")
        write_interact(ok, genes, tss, path=f"{base}.interact.bed", name=f"{method}_L{L}_{stem}")
        if method == "grids":
            objective_curve(curves.get(f"L{L}/{stem}", {}), f"{base}.curve.png",
                            title=f"GRIDS L={L}: {cell_type} / {target}")
        written.add(f"L{L}/{stem}")
    missing = sorted(set(expected) - written)
    if missing:
        raise ValueError(f"shard tables lack selections for {', '.join(missing[:5])}")
