"""Targets and cell-type labels: target genes checked against the data, user cell-type tables,
and marker-based labels from Pegasus (Leiden clusters named by ``infer_cell_types``).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..io import PathLike, atomic_output, gzip_errors, is_gzip
from .embedding import _embedding

if TYPE_CHECKING:
    import anndata as ad

__all__ = [
    "PEGASUS_MARKER_SETS",
    "align_labels",
    "check_targets",
    "drop_small_cell_types",
    "infer_labels",
    "load_markers",
    "read_labels",
]

log = logging.getLogger(__name__)

# Marker sets shipped with Pegasus (pegasus/annotate_cluster/<name>_cell_markers.json).
PEGASUS_MARKER_SETS = (
    "human_immune", "mouse_immune", "human_brain", "mouse_brain", "human_lung", "mouse_lung", "mouse_liver",
)


def check_targets(genes: Iterable[str], targets: pd.DataFrame | Iterable[str], *, source: str) -> None:
    """Raise when a target gene is not among ``genes``, suggesting close names.

    Parameters
    ----------
    genes
        Gene names present in the data.
    targets
        A table with a ``gene`` column (e.g. cell_type, gene) or plain gene names.
    source
        What ``genes`` come from, for the message.

    Raises
    ------
    ValueError
        When a target gene is not among ``genes`` (every such gene listed, with up to three close
        names), or a ``targets`` table has no ``gene`` column.
    """
    if isinstance(targets, pd.DataFrame):
        if "gene" not in targets:
            raise ValueError(f"targets table needs a 'gene' column (has: {', '.join(map(str, targets.columns))})")
        wanted = targets["gene"].astype(str)
    else:
        wanted = pd.Series(list(targets), dtype=str)
    present = pd.Index(genes).astype(str)
    missing = [g for g in dict.fromkeys(wanted) if g not in present]
    if not missing:
        return
    vocabulary = list(present)
    lines = []
    for gene in missing:
        # Case-only differences (Cd14 vs CD14) first: difflib ranks them lower than they deserve.
        close = [g for g in vocabulary if g.lower() == gene.lower()]
        close += [g for g in difflib.get_close_matches(gene, vocabulary, n=3, cutoff=0.6) if g not in close]
        lines.append(f"  {gene}" + (f" (did you mean {', '.join(close[:3])}?)" if close else ""))
    raise ValueError(f"{len(missing)} target gene(s) not in {source}:\n" + "\n".join(lines))


def read_labels(tables: Mapping[str, PathLike]) -> pd.Series:
    """User cell-type tables (``barcode``, ``cell_type``; tab-separated), one per sample.

    Barcodes are prefixed ``{sample}#``; a barcode already written that way is kept.

    Parameters
    ----------
    tables
        Sample -> its table (plain or gzip) with a header naming ``barcode`` and ``cell_type``
        (other columns ignored); rows without a barcode are skipped, cell types are stripped of
        surrounding blanks.

    Returns
    -------
    pandas.Series
        Cell name -> cell type, named ``cell_type``; the index is named ``cell``, in table order,
        sample by sample.

    Raises
    ------
    ValueError
        When a table lacks one of the two columns, a row with a barcode has no (or a blank) cell
        type, a cell is labelled twice, or a gzip table is truncated or corrupt.
    """
    series = []
    for sample, path in tables.items():
        with gzip_errors(path):
            table = pd.read_csv(path, sep="\t", dtype=str, compression="gzip" if is_gzip(path) else None)
        missing = {"barcode", "cell_type"} - set(table.columns)
        if missing:
            raise ValueError(f"{path}: cell-type table needs columns barcode, cell_type "
                             f"(missing {', '.join(sorted(missing))})")
        table = table.dropna(subset=["barcode"])
        empty = table["cell_type"].isna() | (table["cell_type"].str.strip() == "")
        if empty.any():
            raise ValueError(f"{path}: {int(empty.sum())} rows without a cell type, "
                             f"e.g. barcode {table.loc[empty, 'barcode'].iloc[0]}")
        own = f"{sample}#"
        cells = [b if b.startswith(own) else f"{own}{b}" for b in table["barcode"]]
        series.append(pd.Series(table["cell_type"].str.strip().to_numpy(), index=pd.Index(cells, name="cell")))
    labels = pd.concat(series) if series else pd.Series(dtype=str)
    if labels.index.has_duplicates:
        raise ValueError(f"cell-type tables label a cell twice, e.g. {labels.index[labels.index.duplicated()][0]}")
    return labels.rename("cell_type")


def align_labels(labels: pd.Series, cells: Sequence[str], *, source: str = "cell-type table") -> pd.Series:
    """Labels for ``cells`` (QC-passed), warning about cells the labels do not cover.

    Parameters
    ----------
    labels
        Cell name -> cell type (:func:`read_labels`).
    cells
        Cell names to label.
    source
        What ``labels`` come from, for the messages.

    Returns
    -------
    pandas.Series
        Labels of the covered cells, in ``cells`` order; uncovered cells are left out.
        Named ``cell_type``.

    Raises
    ------
    ValueError
        When ``labels`` covers none of ``cells``.
    """
    cells = pd.Index(cells)
    covered = cells.isin(labels.index)
    if not covered.any():
        raise ValueError(f"{source} labels none of the {len(cells)} RNA cells "
                         f"(e.g. table: {', '.join(labels.index[:2])}; data: {', '.join(cells[:2])})")
    if not covered.all():
        log.warning("%d of %d cells have no label in %s and are left out, e.g. %s", int((~covered).sum()),
                    len(cells), source, ", ".join(cells[~covered][:3]))
    return labels.reindex(cells[covered]).rename("cell_type")


def drop_small_cell_types(labels: pd.Series, *, min_cells: int) -> pd.Series:
    """Which cells to keep when cell types with fewer than ``min_cells`` cells are dropped.

    Parameters
    ----------
    labels
        Cell type of each cell.
    min_cells
        Least cells a kept cell type has.

    Returns
    -------
    pandas.Series
        Boolean mask on ``labels.index`` (True = keep), named ``keep``. Dropped types are logged
        as a warning with their sizes.

    Raises
    ------
    ValueError
        When every cell type is below ``min_cells``.
    """
    sizes = labels.value_counts()
    small = sizes[sizes < min_cells].sort_index()
    if len(small) == len(sizes):
        raise ValueError(f"every cell type has fewer than min_cells={min_cells} cells: "
                         + ", ".join(f"{t} ({n})" for t, n in small.items()))
    if len(small):
        log.warning("dropping %d cell type(s) with fewer than %d cells: %s", len(small), min_cells,
                    ", ".join(f"{t} ({n} cells)" for t, n in small.items()))
    return (~labels.isin(small.index)).rename("keep")


def load_markers(markers: str | PathLike) -> dict:
    """A Pegasus marker set: a preset name (:data:`PEGASUS_MARKER_SETS`) or a JSON file.

    Parameters
    ----------
    markers
        A preset name, read from the installed Pegasus package, or a path to a marker JSON file.

    Returns
    -------
    dict
        The parsed JSON: ``{"cell_types": [{"name", "markers": [{"genes": ["X+", ...], "weight"}],
        ...}]}``, as Pegasus' ``infer_cell_types`` takes it.

    Raises
    ------
    ValueError
        When ``markers`` is neither a preset nor an existing file, or the text is not JSON of that
        form (each cell type needs ``markers``, each marker ``genes``).
    """
    from importlib.resources import files

    if str(markers) in PEGASUS_MARKER_SETS:
        text = files("pegasus.annotate_cluster").joinpath(f"{markers}_cell_markers.json").read_text()
        source = f"Pegasus preset '{markers}'"
    else:
        path = Path(markers)
        if not path.is_file():
            raise ValueError(f"marker set {markers!r} is neither a Pegasus preset ({', '.join(PEGASUS_MARKER_SETS)}) "
                             "nor an existing JSON file")
        text, source = path.read_text(), str(path)
    try:
        obj = json.loads(text)
        _ = [m["genes"] for ct in obj["cell_types"] for m in ct["markers"]]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{source}: not a Pegasus marker JSON ({{'cell_types': [{{'name', 'markers': "
                         f"[{{'genes': ['X+', ...], 'weight'}}]}}]}}): {err}") from err
    return obj


def _prune_markers(obj: dict, genes: set[str]) -> list[str]:
    """Drop (in place) cell types none of whose positive markers is in ``genes``; their names.

    Pegasus scores a type from the markers present. On a small panel a type may keep only
    negative markers (human_immune's Plasma cell keeps just ``MS4A1-`` on 45 PBMC genes) and
    then scores 1.0 in every cluster lacking that gene: absence of a marker is no evidence.
    """
    dropped, kept = [], []
    for ct in obj["cell_types"]:
        positive = {g[:-1] for m in ct["markers"] for g in m["genes"] if g.endswith("+")}
        if positive & genes:
            kept.append(ct)
            if ct.get("subtypes"):
                dropped += _prune_markers(ct["subtypes"], genes)
        else:
            dropped.append(ct["name"])
    obj["cell_types"] = kept
    return dropped


def _marker_genes(obj: dict) -> set[str]:
    genes = set()
    for ct in obj["cell_types"]:
        genes.update(g[:-1] for m in ct["markers"] for g in m["genes"])
        if ct.get("subtypes"):
            genes |= _marker_genes(ct["subtypes"])
    return genes


def infer_labels(
    adata: ad.AnnData,
    *,
    markers: str | PathLike,
    resolution: float = 1.0,
    n_pcs: int = 50,
    n_neighbors: int = 100,
    threshold: float = 0.5,
    random_state: int = 0,
    n_jobs: int = 1,
    report: PathLike | None = None,
) -> pd.Series:
    """Marker-based cell-type labels: Pegasus PCA, kNN, Leiden, DE, ``infer_cell_types``.

    Parameters
    ----------
    adata
        Output of :func:`rna_qc` (log-normalised ``X``; PCA on ``var['highly_variable_features']``
        when present, DE on every gene).
    markers
        Pegasus preset name (``human_immune``, ``mouse_brain``, ...) or a marker JSON path.
    resolution
        Leiden resolution.
    n_pcs
        PCA components (fewer on data too small for them).
    n_neighbors
        Neighbours per cell in Pegasus' kNN graph (``pg.neighbors``' ``K``).
    threshold
        Minimum Pegasus score for a cluster to be named; below it the cluster is called
        ``unknown_<cluster>``.
    random_state
        Seed of the PCA, the kNN graph and Leiden.
    n_jobs
        Threads for Pegasus.
    report
        Optional text file with Pegasus' per-cluster cell-type scores.

    Returns
    -------
    pandas.Series
        Cell name -> cell type, named ``cell_type``. Clusters named alike are merged (no
        Pegasus ``-2`` suffixes). Deterministic for a given ``random_state``. The index is
        named ``cell``, in the order of ``adata``.

    Raises
    ------
    ValueError
        When the marker set cannot be loaded (:func:`load_markers`), none of its genes is in the
        data, or none of its cell types has a positive marker in the data.
    """
    import pegasus as pg

    marker_set = load_markers(markers)
    known = _marker_genes(marker_set) & set(adata.var_names)
    if not known:
        raise ValueError(f"none of the genes of marker set {markers!r} is in the data "
                         f"(data genes e.g. {', '.join(adata.var_names[:5])})")
    dropped = _prune_markers(marker_set, set(adata.var_names))
    log.info("marker set %s: %d of its genes are in the data; %d cell type(s) without a positive marker "
             "in the data are not considered%s", markers, len(known), len(dropped),
             f" ({', '.join(dropped)})" if dropped else "")
    if not marker_set["cell_types"]:
        raise ValueError(f"no cell type of marker set {markers!r} has a positive marker in the data")

    data = _embedding(adata, n_pcs=n_pcs, random_state=random_state, n_jobs=n_jobs)
    pg.neighbors(data, K=n_neighbors, random_state=random_state, n_jobs=n_jobs)
    pg.leiden(data, resolution=resolution, random_state=random_state, class_label="cluster")
    # infer_cell_types scores clusters from DE results (varm['de_res']): de_analysis first.
    pg.de_analysis(data, cluster="cluster", n_jobs=n_jobs, verbose=False)
    with atomic_output(report) if report else contextlib.nullcontext() as out:
        scores = pg.infer_cell_types(data, markers=marker_set, de_test="mwu", threshold=threshold,
                                     output_file=str(out) if out else None)
    names = {}
    for cluster, ranked in scores.items():
        if not ranked or ranked[0].score < threshold:
            names[cluster] = f"unknown_{cluster}"
        else:
            # One cluster at a time: infer_cluster_names would suffix repeats ("T cell-2").
            names[cluster] = pg.infer_cluster_names({cluster: ranked}, threshold=threshold,
                                                    is_human_immune=str(markers) == "human_immune")[0]
    log.info("clusters -> cell types: %s", "; ".join(f"{c}: {n}" for c, n in names.items()))
    clusters = data.obs["cluster"].astype(str)
    return pd.Series(clusters.map(names).to_numpy(), index=pd.Index(adata.obs_names, name="cell"), name="cell_type")
