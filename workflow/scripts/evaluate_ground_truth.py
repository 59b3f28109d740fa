"""Snakemake adapter: recovery of planted links and the redundancy check (simulated data)."""

from grids.workflow import logged
from grids.workflow.stages.evaluate import run_ground_truth

with logged(snakemake.log[0]):
    run_ground_truth(
        model=snakemake.input.model,
        paired=snakemake.input.paired,
        tables=snakemake.input.tables,
        metas=snakemake.input.metas,
        truth=snakemake.input.truth,
        split=snakemake.params.split,
        out_table=snakemake.output.table,
        out_redundancy=snakemake.output.redundancy,
        out_figure=snakemake.output.figure,
        out_redundancy_figure=snakemake.output.redundancy_figure,
        out_redundancy_summary=snakemake.output.redundancy_summary,
    )
