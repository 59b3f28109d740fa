"""All methods' selections as one long table, read from the explain shards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["read_selections", "selection_keys", "KEY", "peak_sets"]

KEY = ["method", "L", "cell_type", "target"]  # one selection


def read_selections(tables: Sequence[str], metas: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The shard tables concatenated (one row per selected peak; a method that did not run on a
    target has one row with ``status`` 'not run: ...' and ``peak_index`` -1), and the genes of
    each target keyed by ``{cell_type}__{target}`` file stem."""
    if not tables:
        raise ValueError("no selection tables to evaluate")
    frames = []
    for path in tables:
        frame = pd.read_csv(path, sep="\t", dtype={"chrom": str, "cell_type": str, "target": str})
        missing = [c for c in (*KEY, "kind", "rank", "peak_index", "chrom", "start", "end", "status")
                   if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: not an explain shard table, it lacks columns {', '.join(missing)}")
        frames.append(frame)
    selections = pd.concat(frames, ignore_index=True)
    selections["chrom"] = selections["chrom"].fillna("")
    members: dict[str, list[str]] = {}
    for path in metas:
        members.update(json.loads(Path(path).read_text())["genes"])
    return selections, members


def selection_keys(selections: pd.DataFrame) -> pd.DataFrame:
    """One row per selection: method, L, cell_type, target, kind, status, in first-seen order."""
    return selections.drop_duplicates(KEY)[[*KEY, "kind", "status"]].reset_index(drop=True)


def peak_sets(selections: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """Selected peak indices per selection key (empty for one that did not run)."""
    ok = selections[selections["status"] == "ok"]
    sets = {key: group.sort_values("rank")["peak_index"].to_numpy(np.int64)
            for key, group in ok.groupby(KEY, sort=False)}
    for key in selections.drop_duplicates(KEY)[KEY].itertuples(index=False):
        sets.setdefault(tuple(key), np.empty(0, np.int64))
    return sets
