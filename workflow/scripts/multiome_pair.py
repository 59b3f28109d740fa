"""Snakemake adapter: pair RNA and ATAC cells, split them, write paired.h5mu."""

from grids.multiome import run_pairing
from grids.workflow import logged

with logged(snakemake.log[0]):
    params = snakemake.params
    run_pairing(
        rna_h5ad=snakemake.input.rna,
        rna_qc=snakemake.input.rna_qc,
        atac_h5ad=snakemake.input.atac,
        min_fragments=params.min_fragments,
        min_tss_enrichment=params.min_tss_enrichment,
        min_cells_per_type=params.min_cells_per_type,
        split_settings=params.split,
        out_h5mu=snakemake.output.h5mu,
        out_report=snakemake.output.report,
        out_umap=snakemake.output.umap,
    )
