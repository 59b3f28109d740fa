"""Snakemake adapter: the methods' redundancy summaries in one table, and its figure."""

from grids.redundancy.stage import run_redundancy_summary
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_redundancy_summary(
        tables=snakemake.input.tables,  # noqa: F821
        out_table=snakemake.output.table,  # noqa: F821
        out_figure=snakemake.output.figure,  # noqa: F821
    )
