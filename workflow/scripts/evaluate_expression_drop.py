"""Snakemake adapter: expression drops on held-out cells, paper-style tables, paired tests, figure."""

from grids.evaluate.stage import run_expression_drop
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_expression_drop(
        model=snakemake.input.model,  # noqa: F821
        paired=snakemake.input.paired,  # noqa: F821
        tables=snakemake.input.tables,  # noqa: F821
        metas=snakemake.input.metas,  # noqa: F821
        split=snakemake.params.split,  # noqa: F821
        out_table=snakemake.output.table,  # noqa: F821
        out_genes=snakemake.output.genes,  # noqa: F821
        out_sets=snakemake.output.sets,  # noqa: F821
        out_tests=snakemake.output.tests,  # noqa: F821
        out_figure=snakemake.output.figure,  # noqa: F821
    )
