"""Snakemake adapter: per-barcode ATAC QC and cell calls for one sample."""

from grids.workflow import logged
from grids.workflow.stages.atac import run_barcode_qc

with logged(snakemake.log[0]):
    atac = snakemake.params.atac
    run_barcode_qc(
        fragments=snakemake.input.fragments,
        gtf=snakemake.input.gtf,
        chrom_sizes=snakemake.input.chrom_sizes,
        rna=snakemake.input.rna,
        cells=atac["cells"],
        # With cells: rna the thresholds are not applied, and the rule does not pass them.
        min_fragments=atac.get("min_fragments", 0),
        min_tss_enrichment=atac.get("min_tss_enrichment", 0.0),
        chunk_size=snakemake.resources.fragment_chunk_size,
        skip_unknown_chroms=atac["skip_unknown_chromosomes"],
        out_table=snakemake.output.table,
        out_profiles=snakemake.output.profiles,
    )
