"""Benchmark: our binary peak-matrix builder against SnapATAC2 on paper-scale fragments.

    python benchmarks/atac_matrix.py [--sample-dir DIR] [--snapatac2-python PY]

DIR is a simulated sample (default benchmarks/out/paper1, generated with the ``paper`` preset
when missing: ~10 min). Peaks are the sample's planted CREs (sorted, non-overlapping), cells
its called cells. SnapATAC2 runs in its own environment (see benchmarks/README.md) through
benchmarks/snapatac2_peak_matrix.py. Prints, from one run: both times and their ratio, the
agreement of the nonzero patterns, and fragments/s against plain ``zcat > /dev/null``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from grids.atac import build_peak_matrix
from grids.io import read_chrom_sizes

HERE = Path(__file__).resolve().parent


def ensure_sample(sample_dir: Path) -> None:
    if (sample_dir / "fragments.tsv.gz").exists():
        return
    from grids.simulate import make_params, simulate_sample

    print(f"simulating the paper preset into {sample_dir} (one-off, ~10 min)", flush=True)
    simulate_sample(make_params("paper", seed=0), sample_dir.name, sample_dir, hic=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-dir", type=Path, default=HERE / "out" / "paper1")
    parser.add_argument("--snapatac2-python", default=str(HERE / ".venv-snapatac2" / "bin" / "python"))
    args = parser.parse_args()
    ensure_sample(args.sample_dir)
    fragments = args.sample_dir / "fragments.tsv.gz"
    sizes = read_chrom_sizes(args.sample_dir / "chrom.sizes")
    cres = pd.read_csv(args.sample_dir / "truth" / "cres.tsv", sep="\t")
    peaks = cres[["chrom", "start", "end"]].assign(name=cres["cre_id"])
    cells = pd.read_csv(args.sample_dir / "cell_types.tsv", sep="\t")["barcode"].tolist()

    t0 = time.perf_counter()
    subprocess.run(f"zcat {fragments} > /dev/null", shell=True, check=True)
    t_zcat = time.perf_counter() - t0
    n_fragments = int(subprocess.run(f"zcat {fragments} | grep -vc '^#'", shell=True, capture_output=True,
                                     text=True).stdout)

    t0 = time.perf_counter()
    ours = build_peak_matrix(fragments, sizes, peaks, barcodes=cells)
    t_ours = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"ours: {t_ours:.1f} s, peak RSS {peak_rss:.2f} GiB, {ours.X.shape[0]} cells x {ours.X.shape[1]} peaks, "
          f"nnz={ours.X.nnz}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        bed = Path(tmp) / "peaks.bed"
        peaks[["chrom", "start", "end"]].to_csv(bed, sep="\t", header=False, index=False)
        cells_txt = Path(tmp) / "cells.txt"
        cells_txt.write_text("\n".join(cells) + "\n")
        out = Path(tmp) / "snap.npz"
        result = subprocess.run(
            [args.snapatac2_python, str(HERE / "snapatac2_peak_matrix.py"), str(fragments),
             str(args.sample_dir / "chrom.sizes"), str(bed), str(cells_txt), str(out)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            sys.exit(f"SnapATAC2 failed:\n{result.stderr[-3000:]}")
        snap = json.loads(result.stdout.strip().splitlines()[-1])
        theirs = sp.load_npz(out)
    theirs.data[:] = 1
    theirs = theirs.astype(np.uint8)
    t_snap = snap["import_s"] + snap["peak_matrix_s"]
    theirs.sort_indices()
    differ = (ours.X != theirs).nnz if theirs.shape == ours.X.shape else -1
    print(f"snapatac2 {snap['version']}: import {snap['import_s']:.1f} s + make_peak_matrix "
          f"{snap['peak_matrix_s']:.1f} s = {t_snap:.1f} s")
    print(f"fragments={n_fragments} zcat_s={t_zcat:.1f} zcat_fragments_per_s={n_fragments / t_zcat:,.0f} "
          f"ours_fragments_per_s={n_fragments / t_ours:,.0f} ours_vs_zcat={t_ours / t_zcat:.2f}")
    print(f"ratio_ours_to_snapatac2={t_ours / t_snap:.2f}")
    print(f"nonzeros ours={ours.X.nnz} snapatac2={theirs.nnz} entries_that_differ={differ} "
          f"identical={differ == 0}")


if __name__ == "__main__":
    main()
