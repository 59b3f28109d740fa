"""Snakemake adapter: Hi-C validation of the selections with cooler."""

from grids.workflow import logged
from grids.workflow.stages.evaluate import run_hic_validation

with logged(snakemake.log[0]):
    run_hic_validation(
        model=snakemake.input.model,
        tables=snakemake.input.tables,
        metas=snakemake.input.metas,
        gtf=snakemake.input.gtf,
        hic_files=snakemake.params.files,
        resolution=snakemake.params.resolution,
        n_draws=snakemake.params.draws,
        seed=snakemake.params.seed,
        out_table=snakemake.output.table,
        out_figure=snakemake.output.figure,
    )
