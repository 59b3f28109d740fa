"""Benchmark: the simulator at the paper's scale streams to disk within 8 GiB.

Simulates one sample of the ``paper`` preset (5,133 cells: two samples make the paper's
10,266) plus the Hi-C map of one cell type, and prints wall time, peak resident memory and
output sizes, with the ratio of peak memory to the 8 GiB budget.

    python benchmarks/simulate_paper.py [--out DIR] [--cells N]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from grids.simulate import build_regulatory_model, make_params, simulate_sample, write_hic_cool

BUDGET_GIB = 8.0


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temp dir)")
    parser.add_argument("--cells", type=int, default=None, help="override cells_per_sample")
    args = parser.parse_args()
    overrides = {"cells_per_sample": args.cells} if args.cells else {}
    params = make_params("paper", seed=0, **overrides)
    out = args.out or Path(tempfile.mkdtemp(prefix="grids-paper-"))

    t0 = time.perf_counter()
    model = build_regulatory_model(params)
    t_model = time.perf_counter() - t0
    truth = simulate_sample(params, "paper1", out / "paper1", model=model, hic=False)
    t_sample = time.perf_counter() - t0 - t_model
    t1 = time.perf_counter()
    write_hic_cool(model, model.cell_types[0], out / "paper1" / "hic" / f"{model.cell_types[0]}.cool")
    t_hic = time.perf_counter() - t1

    cells = truth[truth["is_cell"]]
    peak = peak_rss_gib()
    sizes = {p.name: p.stat().st_size / 2**20 for p in (out / "paper1").rglob("*") if p.is_file()}
    print(f"preset=paper cells={len(cells)} genes={len(model.genes)} cres={len(model.cres)} "
          f"cell_types={len(model.cell_types)}")
    print(f"fragments_unique_total={int(truth['n_fragments'].sum())} "
          f"median_fragments_per_cell={cells['n_fragments'].median():.0f} "
          f"median_frip={cells['frip'].median():.3f}")
    print(f"time_model_s={t_model:.1f} time_sample_s={t_sample:.1f} time_hic_one_type_s={t_hic:.1f}")
    print(f"fragments_MiB={sizes['fragments.tsv.gz']:.0f} rna_h5_MiB={sizes['filtered_feature_bc_matrix.h5']:.1f}")
    print(f"peak_rss_GiB={peak:.2f} budget_GiB={BUDGET_GIB} ratio_peak_to_budget={peak / BUDGET_GIB:.2f}")


if __name__ == "__main__":
    main()
