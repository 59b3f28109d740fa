"""Snakemake adapter: RNA QC, HVGs, labels and UMAP for all samples."""

from grids.rna_stage import run_rna_stage
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_rna_stage(
        rna_files=snakemake.params.rna_files,  # noqa: F821
        label_tables=snakemake.params.label_tables,  # noqa: F821
        targets=snakemake.input.targets,  # noqa: F821
        settings=snakemake.params.settings,  # noqa: F821
        mito_prefix=snakemake.params.mito_prefix,  # noqa: F821
        out_h5ad=snakemake.output.h5ad,  # noqa: F821
        out_qc=snakemake.output.qc,  # noqa: F821
        out_figure=snakemake.output.figure,  # noqa: F821
        out_labels=snakemake.output.labels,  # noqa: F821
    )
