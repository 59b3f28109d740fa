"""Snakemake adapter: hit ratios (paper Table 3)."""

from grids.evaluate.stage import run_hit_ratio
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_hit_ratio(
        tables=snakemake.input.tables,  # noqa: F821
        metas=snakemake.input.metas,  # noqa: F821
        gtf=snakemake.input.gtf,  # noqa: F821
        soft_distance=snakemake.params.soft_distance,  # noqa: F821
        out_table=snakemake.output.table,  # noqa: F821
        out_targets=snakemake.output.targets,  # noqa: F821
        out_figure=snakemake.output.figure,  # noqa: F821
    )
