"""Snakemake adapter: binary cells x peaks matrix of one sample."""

from grids.workflow import logged
from grids.workflow.stages.atac import run_sample_matrix

with logged(snakemake.log[0]):
    atac = snakemake.params.atac
    run_sample_matrix(
        sample=snakemake.wildcards.sample,
        fragments=snakemake.input.fragments,
        chrom_sizes=snakemake.input.chrom_sizes,
        peaks=snakemake.input.peaks,
        barcode_table=snakemake.input.barcodes,
        rna=snakemake.input.rna if atac["cells"] == "rna" else None,
        chunk_size=snakemake.resources.fragment_chunk_size,
        skip_unknown_chroms=atac["skip_unknown_chromosomes"],
        out_h5ad=snakemake.output.h5ad,
    )
