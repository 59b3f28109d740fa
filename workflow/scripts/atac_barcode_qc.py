"""Snakemake adapter: per-barcode ATAC QC and cell calls for one sample."""

from grids.atac.stage import run_barcode_qc
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    atac = snakemake.params.atac  # noqa: F821
    run_barcode_qc(
        fragments=snakemake.input.fragments,  # noqa: F821
        gtf=snakemake.input.gtf,  # noqa: F821
        chrom_sizes=snakemake.input.chrom_sizes,  # noqa: F821
        rna=snakemake.input.rna,  # noqa: F821
        cells=atac["cells"],
        min_fragments=atac["min_fragments"],
        min_tss_enrichment=atac["min_tss_enrichment"],
        chunk_size=atac["chunk_size"],
        skip_unknown_chroms=atac["skip_unknown_chromosomes"],
        out_table=snakemake.output.table,  # noqa: F821
        out_profiles=snakemake.output.profiles,  # noqa: F821
    )
