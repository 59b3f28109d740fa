"""Snakemake adapter: per-target selection TSVs, BEDPE and interact tracks (and GRIDS curves)."""

from grids.workflow import logged
from grids.workflow.stages.explain import write_target_files

with logged(snakemake.log[0]):
    write_target_files(
        snakemake.input.tables,
        snakemake.input.metas,
        snakemake.input.gtf,
        out_dir=snakemake.params.out_dir,
        method=snakemake.params.method,
        expected=snakemake.params.selections,
    )
