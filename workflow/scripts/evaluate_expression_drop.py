"""Snakemake adapter: expression drops on held-out cells, paper-style tables, paired tests, figure."""

from grids.workflow import logged
from grids.workflow.stages.evaluate import run_expression_drop

with logged(snakemake.log[0]):
    run_expression_drop(
        model=snakemake.input.model,
        paired=snakemake.input.paired,
        tables=snakemake.input.tables,
        metas=snakemake.input.metas,
        split=snakemake.params.split,
        out_table=snakemake.output.table,
        out_genes=snakemake.output.genes,
        out_sets=snakemake.output.sets,
        out_tests=snakemake.output.tests,
        out_figure=snakemake.output.figure,
    )
