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
        # With cells: rna the thresholds are not applied, and the rule does not pass them.
        min_fragments=atac.get("min_fragments", 0),
        min_tss_enrichment=atac.get("min_tss_enrichment", 0.0),
        chunk_size=snakemake.resources.fragment_chunk_size,  # noqa: F821
        skip_unknown_chroms=atac["skip_unknown_chromosomes"],
        out_table=snakemake.output.table,  # noqa: F821
        out_profiles=snakemake.output.profiles,  # noqa: F821
    )
