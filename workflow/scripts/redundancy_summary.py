"""Snakemake adapter: the methods' redundancy summaries in one table, and its figure."""

from grids.redundancy.stage import run_redundancy_summary
from grids.workflow import logged

with logged(snakemake.log[0]):
    run_redundancy_summary(
        tables=snakemake.input.tables,
        out_table=snakemake.output.table,
        out_figure=snakemake.output.figure,
    )
