"""Snakemake adapter: the cross-cell-type matrix (paper Figure 3)."""

from grids.workflow import logged
from grids.workflow.stages.evaluate import run_cross_celltype

with logged(snakemake.log[0]):
    run_cross_celltype(
        model=snakemake.input.model,
        paired=snakemake.input.paired,
        tables=snakemake.input.tables,
        metas=snakemake.input.metas,
        targets=snakemake.input.targets,
        split=snakemake.params.split,
        method=snakemake.params.method,
        set_target=snakemake.params.set_target,
        out_table=snakemake.output.table,
        out_figure=snakemake.output.figure,
    )
