"""Snakemake adapter: hit ratios (paper Table 3)."""

from grids.workflow import logged
from grids.workflow.stages.evaluate import run_hit_ratio

with logged(snakemake.log[0]):
    run_hit_ratio(
        tables=snakemake.input.tables,
        metas=snakemake.input.metas,
        gtf=snakemake.input.gtf,
        soft_distance=snakemake.params.soft_distance,
        out_table=snakemake.output.table,
        out_targets=snakemake.output.targets,
        out_figure=snakemake.output.figure,
    )
