"""All methods' selections as one long table, read from the explain shards."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["read_selections", "selection_keys", "KEY", "peak_sets"]

KEY = ["method", "L", "cell_type", "target"]  # one selection


def read_selections(tables: Sequence[str], metas: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The explain shard tables concatenated and the genes of each target keyed by
    ``{cell_type}__{target}`` file stem (:func:`grids.explain.shards.read_shards`).

    Parameters
    ----------
    tables
        Explain shard tables (TSV, one row per selected peak).
    metas
        The shards' JSON metadata files (their ``genes`` entries are read).

    Returns
    -------
    selections : pandas.DataFrame
        The shard tables concatenated, in the order given (see :func:`grids.explain.shards.read_shards`).
    members : dict
        File stem -> the target's genes.

    Raises
    ------
    ValueError
        When ``tables`` is empty, or a table lacks a column the readers need.
    """
    from ..explain.shards import read_shards

    selections, members, _ = read_shards(tables, metas)
    return selections, members


def selection_keys(selections: pd.DataFrame) -> pd.DataFrame:
    """One row per selection: method, L, cell_type, target, kind, status, in first-seen order.

    Parameters
    ----------
    selections
        The long selections table (:func:`read_selections`).

    Returns
    -------
    pandas.DataFrame
        Columns method, L, cell_type, target, kind, status, from each selection's first row;
        index 0..n-1.
    """
    return selections.drop_duplicates(KEY)[[*KEY, "kind", "status"]].reset_index(drop=True)


def peak_sets(selections: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """Selected peak indices per selection key (empty for one that did not run).

    Parameters
    ----------
    selections
        The long selections table (:func:`read_selections`).

    Returns
    -------
    dict
        (method, L, cell_type, target) -> int64 array of ``peak_index`` in ``rank`` order;
        an empty array for a selection whose ``status`` is not 'ok'.
    """
    ok = selections[selections["status"] == "ok"]
    sets = {key: group.sort_values("rank")["peak_index"].to_numpy(np.int64)
            for key, group in ok.groupby(KEY, sort=False)}
    for key in selections.drop_duplicates(KEY)[KEY].itertuples(index=False):
        sets.setdefault(tuple(key), np.empty(0, np.int64))
    return sets
