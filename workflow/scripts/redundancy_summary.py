"""Snakemake adapter: the methods' redundancy summaries in one table, and its figure."""

from grids.workflow import logged
from grids.workflow.stages.redundancy import run_redundancy_summary

with logged(snakemake.log[0]):
    run_redundancy_summary(
        tables=snakemake.input.tables,
        out_table=snakemake.output.table,
        out_figure=snakemake.output.figure,
    )
