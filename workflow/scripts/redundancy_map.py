"""Snakemake adapter: redundancy maps of one method's selections (DESIGN §5b)."""

from grids.redundancy.stage import run_redundancy_maps
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_redundancy_maps(
        model=snakemake.input.model,  # noqa: F821
        paired=snakemake.input.paired,  # noqa: F821
        gtf=snakemake.input.gtf,  # noqa: F821
        tables=snakemake.input.tables,  # noqa: F821
        metas=snakemake.input.metas,  # noqa: F821
        method=snakemake.wildcards.method,  # noqa: F821
        split=snakemake.params.split,  # noqa: F821
        window=snakemake.params.window,  # noqa: F821
        settings=snakemake.params.settings,  # noqa: F821
        out_dir=snakemake.params.out_dir,  # noqa: F821
        expected=snakemake.params.selections,  # noqa: F821
        out_summary=snakemake.output.summary,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )
