"""Snakemake adapter: one ATAC matrix for all samples, the QC table and the QC figure."""

from grids.plots import atac_qc_figure
from grids.workflow import logged
from grids.workflow.stages.atac import merge_sample_matrices, qc_figure_inputs

with logged(snakemake.log[0]):
    atac = snakemake.params.atac
    adata = merge_sample_matrices(snakemake.input.matrices, snakemake.output.h5ad, snakemake.output.qc)
    barcodes, profiles = qc_figure_inputs(snakemake.params.samples, snakemake.input.barcodes, snakemake.input.profiles)
    threshold_mode = atac["cells"] == "threshold"
    atac_qc_figure(
        barcodes, profiles, adata.obs, path=snakemake.output.figure,
        min_fragments=atac["min_fragments"] if threshold_mode else None,
        min_tss_enrichment=atac["min_tss_enrichment"] if threshold_mode else None,
    )
