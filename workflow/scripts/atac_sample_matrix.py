"""Snakemake adapter: binary cells x peaks matrix of one sample."""

from grids.atac.stage import run_sample_matrix
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    atac = snakemake.params.atac  # noqa: F821
    run_sample_matrix(
        sample=snakemake.wildcards.sample,  # noqa: F821
        fragments=snakemake.input.fragments,  # noqa: F821
        chrom_sizes=snakemake.input.chrom_sizes,  # noqa: F821
        peaks=snakemake.input.peaks,  # noqa: F821
        barcode_table=snakemake.input.barcodes,  # noqa: F821
        rna=snakemake.input.rna if atac["cells"] == "rna" else None,  # noqa: F821
        chunk_size=snakemake.resources.fragment_chunk_size,  # noqa: F821
        skip_unknown_chroms=atac["skip_unknown_chromosomes"],
        out_h5ad=snakemake.output.h5ad,  # noqa: F821
    )
