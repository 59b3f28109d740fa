"""SnapATAC2 side of benchmarks/atac_matrix.py; runs in its own environment.

    <snapatac2-python> benchmarks/snapatac2_peak_matrix.py FRAGMENTS CHROM_SIZES PEAKS_BED CELLS_TXT OUT_NPZ

Imports the fragments (whitelisted cells) and makes the cell x peak matrix the way the
SnapATAC2 tutorials do; prints the two timings as JSON and saves the matrix (cells in
CELLS_TXT order) for the comparison.
"""

import json
import sys
import tempfile
import time

import scipy.sparse as sp
import snapatac2 as snap


def main() -> None:
    fragments, chrom_sizes, peaks_bed, cells_txt, out_npz = sys.argv[1:6]
    sizes = {c: int(n) for c, n in (line.split("\t") for line in open(chrom_sizes).read().split("\n") if line)}
    cells = open(cells_txt).read().split()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        adata = snap.pp.import_fragments(
            fragments, sizes, file=f"{tmp}/import.h5ad", whitelist=cells, min_num_fragments=0,
            sorted_by_barcode=False, tempdir=tmp, n_jobs=2,
        )
        t_import = time.perf_counter() - t0
        t1 = time.perf_counter()
        peaks = snap.pp.make_peak_matrix(adata, peak_file=peaks_bed, file=f"{tmp}/peaks.h5ad")
        t_matrix = time.perf_counter() - t1
        names = list(peaks.obs_names)
        X = peaks.X[:]
        peaks.close()
        adata.close()
    X = sp.csr_matrix(X)
    order = {b: i for i, b in enumerate(names)}
    X = X[[order[c] for c in cells if c in order]]
    sp.save_npz(out_npz, X)
    print(json.dumps({"import_s": t_import, "peak_matrix_s": t_matrix, "n_cells": int(X.shape[0]),
                      "n_peaks": int(X.shape[1]), "missing_cells": len(cells) - int(X.shape[0]),
                      "version": snap.__version__}))


if __name__ == "__main__":
    main()
