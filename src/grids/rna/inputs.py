"""Reading one sample's raw RNA counts: 10x h5 or mtx folder, h5ad, h5mu.

Counts come back as an :class:`anndata.AnnData` of integer counts (cells x genes, cell names
``{sample}#{barcode}`` as on the ATAC side); a file that cannot be read fails with a message
naming it instead of deep inside scanpy.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..io import PathLike, check_10x_h5, gzip_errors, prefixed

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["read_rna"]

log = logging.getLogger(__name__)


def read_rna(path: PathLike, sample: str, *, modality: str = "rna") -> ad.AnnData:
    """Read one sample's raw RNA counts.

    Parameters
    ----------
    path
        A 10x ``.h5`` (Cell Ranger v2/v3+ or Cell Ranger ARC), a 10x mtx folder, an ``.h5ad``
        or an ``.h5mu`` (modality ``modality``).
    sample
        Sample name; cells are named ``{sample}#{barcode}``.
    modality
        The ``.h5mu`` modality holding RNA.

    Returns
    -------
    anndata.AnnData
        Integer counts (CSR, cells x genes), Gene Expression features only, unique gene names;
        ``obs`` has ``sample`` and ``barcode`` (as written in the file).

    Raises
    ------
    ValueError
        Unsupported file, no Gene Expression features, no cells, duplicated barcodes or
        counts that are not non-negative integers.
    """
    import anndata as ad

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: RNA input not found")
    adata = _read_any(path, modality)
    if "feature_types" in adata.var:
        # ARC h5 / h5mu files may carry Peaks or antibody features next to genes.
        keep = (adata.var["feature_types"].astype(str) == "Gene Expression").to_numpy()
        if not keep.any():
            raise ValueError(f"{path}: no 'Gene Expression' features (feature types: "
                             f"{', '.join(sorted(set(adata.var['feature_types'].astype(str))))})")
        adata = adata[:, keep]
    counts = _integer_counts(adata, path)
    if counts.shape[0] == 0 or counts.shape[1] == 0:
        raise ValueError(f"{path}: empty RNA matrix ({counts.shape[0]} cells x {counts.shape[1]} genes)")
    barcodes = adata.obs_names.astype(str)
    if barcodes.has_duplicates:
        raise ValueError(f"{path}: duplicated barcodes, e.g. {barcodes[barcodes.duplicated()][0]}")
    var = pd.DataFrame(index=pd.Index(adata.var_names.astype(str), name="gene"))
    if "gene_ids" in adata.var:
        var["gene_ids"] = adata.var["gene_ids"].astype(str).to_numpy()
    obs = pd.DataFrame({"sample": sample, "barcode": barcodes.to_numpy()},
                       index=pd.Index(prefixed(sample, barcodes), name="cell"))
    out = ad.AnnData(X=counts, obs=obs, var=var)
    if out.var_names.has_duplicates:
        # Cell Ranger references repeat a few symbols; Pegasus and targets need unique names.
        dups = sorted(set(out.var_names[out.var_names.duplicated()]))
        log.info("%s: %d duplicated gene names made unique (e.g. %s)", path, len(dups), ", ".join(dups[:3]))
        out.var_names_make_unique()
        out.var.index.name = "gene"
    log.info("%s: %d cells x %d genes for sample %s", path, out.n_obs, out.n_vars, sample)
    return out


def _read_any(path: Path, modality: str) -> ad.AnnData:
    """Dispatch on the input kind; 10x formats through scanpy (see comment below)."""
    import anndata as ad

    # scanpy rather than pegasusio for 10x files: pegasusio strips the GEM-well suffix from
    # barcodes ("AAAC-1" -> "AAAC"), which would no longer match the ATAC fragments.
    if path.is_dir():
        import scanpy as sc

        if not any((path / f).exists() for f in ("matrix.mtx.gz", "matrix.mtx")):
            raise ValueError(f"{path}: not a 10x mtx folder (no matrix.mtx[.gz])")
        try:
            return sc.read_10x_mtx(path, var_names="gene_symbols", gex_only=True, make_unique=False)
        except (EOFError, OSError, zlib.error):
            # scanpy does not say which of the folder's files failed: find it, then re-raise.
            for member in sorted(path.glob("*.gz")):
                _check_gzip_complete(member)
            raise
    suffix = path.suffix.lower()
    try:
        if suffix == ".h5":
            import scanpy as sc

            check_10x_h5(path)
            return sc.read_10x_h5(path, gex_only=True)
        if suffix == ".h5ad":
            return ad.read_h5ad(path)
        if suffix == ".h5mu":
            import mudata as md

            return md.read_h5ad(path, modality)
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: cannot read RNA counts ({err})") from err
    raise ValueError(f"{path}: unsupported RNA input; expected a 10x .h5, .h5ad, .h5mu or 10x mtx folder")


def _check_gzip_complete(path: Path) -> None:
    """Read a gzip file to its end; a truncated or corrupt one raises ValueError naming it."""
    with gzip_errors(path), gzip.open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


def _integer_counts(adata: ad.AnnData, path: Path) -> sp.csr_matrix:
    """The first of layers['counts'], X, raw.X that holds non-negative integers, as int32 CSR."""
    candidates = []
    if "counts" in adata.layers:
        candidates.append(("layers['counts']", adata.layers["counts"]))
    candidates.append(("X", adata.X))
    if adata.raw is not None and adata.raw.n_vars == adata.n_vars and adata.raw.var_names.equals(adata.var_names):
        candidates.append(("raw.X", adata.raw.X))
    for name, matrix in candidates:
        if matrix is None:
            continue
        matrix = sp.csr_matrix(matrix)
        values = matrix.data
        if values.size and (values.min() < 0 or not np.array_equal(values, np.round(values))):
            continue
        if values.size and values.max() > np.iinfo(np.int32).max:
            raise ValueError(f"{path}: counts in {name} overflow int32")
        if name != "X":
            log.info("%s: raw counts taken from %s", path, name)
        out = matrix.astype(np.int32)
        out.eliminate_zeros()
        return out
    raise ValueError(f"{path}: no raw integer counts (checked {', '.join(n for n, _ in candidates)}); "
                     "the RNA stage needs UMI counts, not normalised values")
