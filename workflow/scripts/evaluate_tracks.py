"""Snakemake adapter: genome-track figures of the top targets."""

from grids.evaluate.stage import run_track_figures
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_track_figures(
        model=snakemake.input.model,  # noqa: F821
        tables=snakemake.input.tables,  # noqa: F821
        gtf=snakemake.input.gtf,  # noqa: F821
        figures=snakemake.params.figures,  # noqa: F821
        method=snakemake.params.method,  # noqa: F821
        L=snakemake.params.L,  # noqa: F821
        window=snakemake.params.window,  # noqa: F821
        hic_files=snakemake.params.files,  # noqa: F821
        resolution=snakemake.params.resolution,  # noqa: F821
        truth=snakemake.input.truth[0] if snakemake.input.truth else "",  # noqa: F821
    )
