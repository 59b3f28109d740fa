"""Snakemake adapter: per-target selection TSVs, BEDPE and interact tracks (and GRIDS curves)."""

from grids.explain.stage import write_target_files
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    write_target_files(
        snakemake.input.tables,  # noqa: F821
        snakemake.input.metas,  # noqa: F821
        snakemake.input.gtf,  # noqa: F821
        snakemake.params.out_dir,  # noqa: F821
        snakemake.params.method,  # noqa: F821
        snakemake.params.selections,  # noqa: F821
    )
