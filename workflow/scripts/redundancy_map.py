"""Snakemake adapter: redundancy maps of one method's selections (docs/architecture.md §5b)."""

from grids.workflow import logged
from grids.workflow.stages.redundancy import run_redundancy_maps

with logged(snakemake.log[0]):
    run_redundancy_maps(
        model=snakemake.input.model,
        paired=snakemake.input.paired,
        gtf=snakemake.input.gtf,
        tables=snakemake.input.tables,
        metas=snakemake.input.metas,
        method=snakemake.wildcards.method,
        split=snakemake.params.split,
        window=snakemake.params.window,
        settings=snakemake.params.settings,
        out_dir=snakemake.params.out_dir,
        expected=snakemake.params.selections,
        out_summary=snakemake.output.summary,
        threads=snakemake.threads,
    )
