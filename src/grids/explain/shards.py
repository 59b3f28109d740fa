"""The explain shard table: what each explain job writes and the evaluation, the redundancy maps
and the per-target files read (one row per selected peak)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["SELECTION_COLUMNS", "SHARD_COLUMNS", "REQUIRED_SHARD_COLUMNS", "read_shards"]

SELECTION_COLUMNS = ["rank", "peak_index", "chrom", "start", "end", "score", "status"]
SHARD_COLUMNS = ["method", "L", "cell_type", "target", "kind", "n_genes", "train_loss", "seconds", *SELECTION_COLUMNS]
# What readers of the shards rely on (timings and losses are informative only).
REQUIRED_SHARD_COLUMNS = ["method", "L", "cell_type", "target", "kind", "rank", "peak_index", "chrom", "start", "end",
                          "status"]


def read_shards(tables: Sequence[str], metas: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list[str]], dict]:
    """Shard tables concatenated (one row per selected peak; a method that did not run on a
    target has one row with ``status`` 'not run: ...' and ``peak_index`` -1), the genes of each
    target keyed by file stem, and the GRIDS curves keyed by ``L{L}/{stem}``, from the metas.

    Parameters
    ----------
    tables
        Explain shard tables (TSV, columns :data:`SHARD_COLUMNS`; at least :data:`REQUIRED_SHARD_COLUMNS`).
    metas
        The shards' JSON metadata files, with ``genes`` and ``curves`` entries.

    Returns
    -------
    selections : pandas.DataFrame
        The tables concatenated in the order given, index 0..n-1; chrom, cell_type and target read as
        strings, a missing chrom as ''.
    members : dict
        File stem -> the target's genes (a later meta wins on a repeated stem).
    curves : dict
        ``L{L}/{stem}`` -> the GRIDS curve of that search.

    Raises
    ------
    ValueError
        When ``tables`` is empty, or a table lacks a required column.
    """
    if not tables:
        raise ValueError("no selection tables to read")
    frames = []
    for path in tables:
        frame = pd.read_csv(path, sep="\t", dtype={"chrom": str, "cell_type": str, "target": str})
        missing = [c for c in REQUIRED_SHARD_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: not an explain shard table, it lacks columns {', '.join(missing)}")
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table["chrom"] = table["chrom"].fillna("")
    members: dict[str, list[str]] = {}
    curves: dict[str, Any] = {}
    for path in metas:
        meta = json.loads(Path(path).read_text())
        members.update(meta["genes"])
        curves.update(meta["curves"])
    return table, members, curves
