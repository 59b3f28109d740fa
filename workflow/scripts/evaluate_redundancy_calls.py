"""Snakemake adapter: called redundant pairs and OR-group recovery against the planted truth (simulated data)."""

from grids.workflow import logged
from grids.workflow.stages.evaluate import run_redundancy_calls

with logged(snakemake.log[0]):
    run_redundancy_calls(
        paired=snakemake.input.paired,
        tables=snakemake.input.tables,
        metas=snakemake.input.metas,
        truth=snakemake.input.truth,
        maps=snakemake.input.maps,
        methods=snakemake.params.methods,
        split=snakemake.params.split,
        min_cells=snakemake.params.min_cells,
        out_calls=snakemake.output.calls,
        out_recovery=snakemake.output.recovery,
        out_figure=snakemake.output.figure,
    )
