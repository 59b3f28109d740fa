"""Snakemake adapter: RNA QC, HVGs, labels and UMAP for all samples."""

from grids.workflow import logged
from grids.workflow.stages.rna import run_rna_stage

with logged(snakemake.log[0]):
    run_rna_stage(
        rna_files=snakemake.params.rna_files,
        label_tables=snakemake.params.label_tables,
        targets=snakemake.input.targets,
        settings=snakemake.params.settings,
        mito_prefix=snakemake.params.mito_prefix,
        out_h5ad=snakemake.output.h5ad,
        out_qc=snakemake.output.qc,
        out_figure=snakemake.output.figure,
        out_labels=snakemake.output.labels,
    )
