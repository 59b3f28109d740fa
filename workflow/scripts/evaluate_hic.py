"""Snakemake adapter: Hi-C validation of the selections with cooler."""

from grids.evaluate.stage import run_hic_validation
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_hic_validation(
        model=snakemake.input.model,  # noqa: F821
        tables=snakemake.input.tables,  # noqa: F821
        metas=snakemake.input.metas,  # noqa: F821
        gtf=snakemake.input.gtf,  # noqa: F821
        hic_files=snakemake.params.files,  # noqa: F821
        resolution=snakemake.params.resolution,  # noqa: F821
        n_draws=snakemake.params.draws,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        out_table=snakemake.output.table,  # noqa: F821
        out_figure=snakemake.output.figure,  # noqa: F821
    )
