"""The ATAC stage as the workflow runs it: one function per rule, files in, files out."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from grids.atac.matrix import build_peak_matrix
from grids.atac.peaks import read_peaks_bed
from grids.atac.qc import barcode_qc, call_cells
from grids.genome import read_tss
from grids.io import atomic_output, check_contig_naming, prefixed, read_cell_barcodes, read_chrom_sizes, write_tsv

__all__ = [
    "cell_groups", "merge_sample_matrices", "qc_figure_inputs", "run_barcode_qc", "run_sample_matrix",
    "safe_group_name",
]

log = logging.getLogger(__name__)

QC_COLUMNS = ["n_fragments", "n_reads", "tss_enrichment", "nucleosome_signal", "frip"]


def run_barcode_qc(
    *,
    fragments: str,
    gtf: str,
    chrom_sizes: str,
    rna: str | None,
    cells: str,
    min_fragments: int,
    min_tss_enrichment: float,
    chunk_size: int,
    skip_unknown_chroms: bool,
    out_table: str,
    out_profiles: str,
) -> pd.DataFrame:
    """Per-barcode QC of one sample and its cell calls; writes a TSV and the aggregate profiles.

    Parameters
    ----------
    fragments
        The sample's fragments file.
    gtf
        Genome annotation; the TSSs of its gene records on the chrom-sizes chromosomes are used (with
        none, a warning is logged and TSS enrichment is 0).
    chrom_sizes
        UCSC chrom sizes file.
    rna
        The sample's RNA matrix (10x h5, h5ad, h5mu or mtx folder); read only when ``cells`` is
        ``"rna"``.
    cells
        ``"rna"``: the cells are the RNA cells found in the fragments (paired multiome); any other
        value: barcodes passing ``min_fragments`` and ``min_tss_enrichment``.
    min_fragments
        Least unique fragments of a cell, when calling cells by thresholds.
    min_tss_enrichment
        Least TSS enrichment of a cell, when calling cells by thresholds.
    chunk_size
        Fragment lines read per chunk.
    skip_unknown_chroms
        Drop fragments on chromosomes absent from the chrom sizes instead of raising.
    out_table
        TSV written: the returned table with ``tss_enrichment`` and ``nucleosome_signal`` rounded to
        4 decimals.
    out_profiles
        ``.npz`` written with the arrays ``fragment_lengths`` and ``tss_profile`` of
        :class:`grids.atac.qc.BarcodeQC`.

    Returns
    -------
    pandas.DataFrame
        :attr:`grids.atac.qc.BarcodeQC.table` plus a bool ``is_cell`` column, sorted by
        ``n_fragments``, largest first (ties in file order), unrounded.

    Raises
    ------
    ValueError
        When the GTF has no gene record or its contig names differ from the chrom sizes only in the
        ``chr`` prefix, when the chrom sizes file is malformed, or when no barcode is called a cell
        (:func:`grids.atac.qc.call_cells`); :class:`grids.fragments.FragmentsError` for a bad
        fragments file.
    """
    sizes = read_chrom_sizes(chrom_sizes)
    tss = read_tss(gtf)
    check_contig_naming(pd.unique(tss["chrom"]), sizes, source=gtf, known_source=chrom_sizes)
    tss = tss[tss["chrom"].isin(list(sizes))].reset_index(drop=True)
    if tss.empty:
        log.warning("%s: no TSS on the chrom-sizes chromosomes; TSS enrichment will be 0", gtf)
    qc = barcode_qc(fragments, sizes, tss, chunk_size=chunk_size, skip_unknown_chroms=skip_unknown_chroms)
    rna_barcodes = read_cell_barcodes(rna) if cells == "rna" else None
    table = qc.table.assign(
        is_cell=call_cells(qc.table, rna_barcodes=rna_barcodes, min_fragments=min_fragments,
                           min_tss_enrichment=min_tss_enrichment, source=f"{fragments} vs {rna}")
    )
    if rna_barcodes is not None:
        missing = len(set(rna_barcodes) - set(table.loc[table["is_cell"], "barcode"]))
        if missing:
            log.warning("%d of %d RNA cells have no fragment in %s; they are dropped", missing, len(rna_barcodes),
                        fragments)
    n_cells = int(table["is_cell"].sum())
    log.info("%s: %d cells of %d barcodes; median fragments per cell %.0f, median TSS enrichment %.2f",
             fragments, n_cells, len(table), table.loc[table.is_cell, "n_fragments"].median(),
             table.loc[table.is_cell, "tss_enrichment"].median())
    table = table.sort_values("n_fragments", ascending=False, kind="stable")
    write_tsv(table.round({"tss_enrichment": 4, "nucleosome_signal": 4}), out_table)
    with atomic_output(out_profiles) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, fragment_lengths=qc.fragment_lengths, tss_profile=qc.tss_profile)
    return table


def cell_groups(barcode_table: str, labels: str | None, per_cell_type: bool) -> dict[str, list[str]]:
    """Barcode -> pseudobulks it belongs to: "all" for every cell, plus its cell type when
    calling per type.

    Parameters
    ----------
    barcode_table
        TSV from :func:`run_barcode_qc`; its ``barcode`` and ``is_cell`` columns are read.
    labels
        TSV whose first two columns are ``barcode`` and ``cell_type``; needed only with
        ``per_cell_type``.
    per_cell_type
        Also put each labelled cell in the pseudobulk of its cell type.

    Returns
    -------
    dict
        Cell barcode -> ``["all"]``, or ``["all", safe_group_name(cell_type)]`` for a cell listed in
        ``labels`` when ``per_cell_type``; only cells (``is_cell``), in the table's order.

    Raises
    ------
    ValueError
        With ``per_cell_type``: when ``labels`` is not given, its first two columns are not
        ``barcode`` and ``cell_type``, or two cell types have the same :func:`safe_group_name`.
    """
    table = pd.read_csv(barcode_table, sep="\t", usecols=["barcode", "is_cell"], dtype={"barcode": str})
    cells = table.loc[table["is_cell"], "barcode"].astype(str)
    if not per_cell_type:
        return {b: ["all"] for b in cells}
    if not labels:
        raise ValueError("atac.call_per_cell_type needs a cell_types file in the sample sheet")
    frame = pd.read_csv(labels, sep="\t", dtype=str)
    if list(frame.columns[:2]) != ["barcode", "cell_type"]:
        raise ValueError(f"{labels}: expected columns barcode and cell_type, found {list(frame.columns)}")
    label = frame.set_index("barcode")["cell_type"]
    by_name: dict[str, list[str]] = {}
    for cell_type in pd.unique(label.dropna()):
        by_name.setdefault(safe_group_name(cell_type), []).append(cell_type)
    clash = next((types for types in by_name.values() if len(types) > 1), None)
    if clash:
        raise ValueError(f"{labels}: cell types {' and '.join(map(repr, clash))} would share the pseudobulk file "
                         f"name {safe_group_name(clash[0])!r}; rename one of them")
    return {b: ["all", safe_group_name(label[b])] if b in label.index else ["all"] for b in cells}


def safe_group_name(cell_type: str) -> str:
    """A cell type as a file-name-safe pseudobulk name.

    Parameters
    ----------
    cell_type
        Cell type label (converted with ``str``).

    Returns
    -------
    str
        The label with every character other than a letter, digit, ``-``, ``_`` or ``.`` replaced by
        ``_``; distinct labels may map to one name.
    """
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(cell_type))


def _write_sample_matrix(X, obs: pd.DataFrame, peaks: pd.DataFrame, path: str) -> None:
    """A sample's cells x peaks AnnData: var indexed by peak name with chrom/start/end."""
    import anndata as ad

    var = peaks.set_index("name")[["chrom", "start", "end"]]
    var.index.name = "peak"
    with atomic_output(path) as tmp:
        ad.AnnData(X=X, obs=obs, var=var).write_h5ad(tmp, compression="gzip")


def run_sample_matrix(
    *,
    sample: str,
    fragments: str,
    chrom_sizes: str,
    peaks: str,
    barcode_table: str,
    rna: str | None,
    chunk_size: int,
    skip_unknown_chroms: bool,
    out_h5ad: str,
) -> None:
    """Binary cells x peaks AnnData of one sample, cells in the RNA matrix's order when paired.

    Parameters
    ----------
    sample
        Sample name: ``obs["sample"]`` and the prefix of the cell names.
    fragments
        The sample's fragments file.
    chrom_sizes
        UCSC chrom sizes file.
    peaks
        Consensus peak BED (sorted, non-overlapping: :func:`grids.atac.peaks.consensus_peaks`).
    barcode_table
        TSV from :func:`run_barcode_qc`.
    rna
        The sample's RNA matrix: when given, every one of its cells is a row, in its order, and a cell
        without fragments gets an empty row (``n_fragments`` 0, logged). None: the called cells
        (``is_cell``) of ``barcode_table``, sorted by barcode.
    chunk_size
        Fragment lines read per chunk.
    skip_unknown_chroms
        Drop fragments on chromosomes absent from the chrom sizes instead of raising.
    out_h5ad
        The AnnData written (gzip-compressed): ``X`` binary uint8 CSR cells x peaks; ``obs`` indexed
        by ``{sample}#{barcode}`` (``cell``) with ``sample``, ``barcode``, ``n_fragments``,
        ``n_reads``, ``tss_enrichment``, ``nucleosome_signal`` (from the barcode table; NaN for a
        cell without fragments), ``frip`` and ``n_peaks``; ``var`` indexed by peak name (``peak``)
        with ``chrom``, ``start``, ``end``.

    Raises
    ------
    ValueError
        When the peaks are unsorted, overlapping or on a chromosome missing from the chrom sizes,
        or the RNA barcodes repeat one (:func:`grids.atac.matrix.build_peak_matrix`);
        :class:`grids.fragments.FragmentsError` for a bad fragments file.
    """
    sizes = read_chrom_sizes(chrom_sizes)
    peak_table = read_peaks_bed(peaks)
    table = pd.read_csv(barcode_table, sep="\t", dtype={"barcode": str}).set_index("barcode")
    # Paired data keeps every RNA cell, in the RNA order; a cell without fragments gets an
    # empty row (n_fragments 0) so pairing can report it instead of it vanishing here.
    order = read_cell_barcodes(rna) if rna else sorted(table.index[table["is_cell"]])
    matrix = build_peak_matrix(fragments, sizes, peak_table, barcodes=order, chunk_size=chunk_size,
                               skip_unknown_chroms=skip_unknown_chroms)
    obs = table.reindex(order)[["n_fragments", "n_reads", "tss_enrichment", "nucleosome_signal"]]
    empty = obs["n_fragments"].isna()
    if empty.any():
        log.warning("%d cells have no fragment in %s (empty ATAC rows), e.g. %s", int(empty.sum()), fragments,
                    ", ".join(obs.index[empty][:3]))
    obs = obs.fillna({"n_fragments": 0, "n_reads": 0}).astype({"n_fragments": np.int64, "n_reads": np.int64})
    obs["frip"] = matrix.frip
    obs["n_peaks"] = np.diff(matrix.X.indptr)
    obs.insert(0, "barcode", obs.index.astype(str))
    obs.insert(0, "sample", sample)
    obs.index = pd.Index(prefixed(sample, order), name="cell")
    _write_sample_matrix(matrix.X, obs, peak_table, out_h5ad)


def merge_sample_matrices(h5ads: Sequence[str], out_h5ad: str, out_qc: str) -> "object":
    """Concatenate per-sample matrices (same peaks) into ``atac.h5ad`` and ``qc.tsv``.

    Parameters
    ----------
    h5ads
        Per-sample AnnData files (:func:`run_sample_matrix`), concatenated in this order.
    out_h5ad
        The merged AnnData written (gzip-compressed), ``uns["binarized"]`` set to True.
    out_qc
        TSV written: the merged ``obs`` with its index as a first ``cell`` column, rounded to 4
        decimals.

    Returns
    -------
    anndata.AnnData
        The merged cells x peaks matrix: cells of each sample in turn, ``var`` of the first file,
        ``obs`` columns the samples share.

    Raises
    ------
    ValueError
        When a file's peaks (``var_names``) differ from those of the first.
    """
    import anndata as ad

    parts = [ad.read_h5ad(p) for p in h5ads]
    for path, part in zip(h5ads[1:], parts[1:]):
        if not part.var_names.equals(parts[0].var_names):
            raise ValueError(f"{path}: its peaks differ from {h5ads[0]}; all samples must use one peak set")
    adata = ad.concat(parts, axis=0, merge="same")
    adata.var = parts[0].var.copy()
    adata.uns["binarized"] = True
    with atomic_output(out_h5ad) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
    write_tsv(adata.obs.reset_index().round(4), out_qc)
    return adata


def qc_figure_inputs(samples: Sequence[str], tables: Sequence[str], profiles: Sequence[str]):
    """Per-sample barcode tables and aggregate profiles, keyed by sample, for the QC figure.

    Parameters
    ----------
    samples
        Sample names.
    tables
        Barcode TSVs from :func:`run_barcode_qc`, one per sample in the same order.
    profiles
        Profile ``.npz`` files from :func:`run_barcode_qc`, one per sample in the same order.

    Returns
    -------
    tuple of dict
        ``(barcodes, profiles)``: sample -> barcode table (DataFrame), and sample -> ``{name: array}``
        of its ``.npz`` (``fragment_lengths``, ``tss_profile``), in the order of ``samples``.
    """
    barcodes = {s: pd.read_csv(t, sep="\t") for s, t in zip(samples, tables)}
    loaded = {s: dict(np.load(p)) for s, p in zip(samples, profiles)}
    return barcodes, loaded


def run_import_matrix(
    *,
    sample: str,
    matrix: str,
    chrom_sizes: str,
    rna: str | None,
    exclude_chromosomes: Sequence[str],
    out_h5ad: str,
) -> None:
    """A sample's precomputed peak matrix as the stage's per-sample AnnData (no peak calling)."""
    import scipy.sparse as sp

    from grids.atac.inputs import read_peak_matrix

    X, barcodes, peaks = read_peak_matrix(matrix, read_chrom_sizes(chrom_sizes),
                                          exclude_chromosomes=exclude_chromosomes)
    row_of = {b: i for i, b in enumerate(barcodes)}
    order = read_cell_barcodes(rna) if rna else barcodes
    present = [b for b in order if b in row_of]
    if not present:
        raise ValueError(f"{matrix}: none of its barcodes is an RNA cell of {rna} "
                         f"(matrix: {', '.join(barcodes[:3])}; RNA: {', '.join(order[:3])})")
    # Cells absent from the peak matrix get empty rows, as with fragments.
    rows = np.array([row_of.get(b, -1) for b in order])
    padded = sp.vstack([X, sp.csr_matrix((1, X.shape[1]), dtype=np.uint8)]).tocsr()
    X = padded[np.where(rows >= 0, rows, X.shape[0])]
    obs = pd.DataFrame({"sample": sample, "barcode": order, "n_peaks": np.diff(X.indptr)},
                       index=pd.Index(prefixed(sample, order), name="cell"))
    for column in ("n_fragments", "n_reads", "tss_enrichment", "nucleosome_signal", "frip"):
        obs[column] = np.nan  # needs fragments
    _write_sample_matrix(X, obs, peaks, out_h5ad)


def write_matrix_peaks(h5ads: Sequence[str], out_bed: str) -> None:
    """peaks.bed from imported matrices, which must share one peak set."""
    import anndata as ad

    from grids.atac.peaks import write_peaks_bed

    first = ad.read_h5ad(h5ads[0], backed="r")
    for path in h5ads[1:]:
        other = ad.read_h5ad(path, backed="r")
        if not other.var_names.equals(first.var_names):
            raise ValueError(f"{path}: its peaks differ from {h5ads[0]}; aggregate the samples with one peak "
                             "set (cellranger-arc aggr) or give fragments so peaks are called jointly")
    write_peaks_bed(first.var.reset_index().rename(columns={"peak": "name"}), out_bed)
