"""Snakemake adapter: called redundant pairs and OR-group recovery against the planted truth (simulated data)."""

from grids.evaluate.stage import run_redundancy_calls
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_redundancy_calls(
        paired=snakemake.input.paired,  # noqa: F821
        tables=snakemake.input.tables,  # noqa: F821
        metas=snakemake.input.metas,  # noqa: F821
        truth=snakemake.input.truth,  # noqa: F821
        maps=snakemake.input.maps,  # noqa: F821
        methods=snakemake.params.methods,  # noqa: F821
        split=snakemake.params.split,  # noqa: F821
        min_cells=snakemake.params.min_cells,  # noqa: F821
        out_calls=snakemake.output.calls,  # noqa: F821
        out_recovery=snakemake.output.recovery,  # noqa: F821
        out_figure=snakemake.output.figure,  # noqa: F821
    )
