"""Snakemake adapter: genome-track figures of the top targets."""

from grids.workflow import logged
from grids.workflow.stages.evaluate import run_track_figures

with logged(snakemake.log[0]):
    run_track_figures(
        model=snakemake.input.model,
        tables=snakemake.input.tables,
        gtf=snakemake.input.gtf,
        figures=snakemake.params.figures,
        method=snakemake.params.method,
        L=snakemake.params.L,
        window=snakemake.params.window,
        hic_files=snakemake.params.files,
        resolution=snakemake.params.resolution,
        truth=snakemake.input.truth[0] if snakemake.input.truth else "",
    )
