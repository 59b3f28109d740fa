"""Snakemake adapter: recovery of planted links and the redundancy check (simulated data)."""

from grids.evaluate.stage import run_ground_truth
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_ground_truth(
        model=snakemake.input.model,  # noqa: F821
        paired=snakemake.input.paired,  # noqa: F821
        tables=snakemake.input.tables,  # noqa: F821
        metas=snakemake.input.metas,  # noqa: F821
        truth=snakemake.input.truth,  # noqa: F821
        split=snakemake.params.split,  # noqa: F821
        out_table=snakemake.output.table,  # noqa: F821
        out_redundancy=snakemake.output.redundancy,  # noqa: F821
        out_figure=snakemake.output.figure,  # noqa: F821
        out_redundancy_figure=snakemake.output.redundancy_figure,  # noqa: F821
        out_redundancy_summary=snakemake.output.redundancy_summary,  # noqa: F821
    )
