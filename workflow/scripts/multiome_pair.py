"""Snakemake adapter: pair RNA and ATAC cells, split them, write paired.h5mu."""

from grids.multiome import run_pairing
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    run_pairing(
        rna_h5ad=snakemake.input.rna,  # noqa: F821
        rna_qc=snakemake.input.rna_qc,  # noqa: F821
        atac_h5ad=snakemake.input.atac,  # noqa: F821
        min_fragments=params.min_fragments,
        min_tss_enrichment=params.min_tss_enrichment,
        min_cells_per_type=params.min_cells_per_type,
        split_settings=params.split,
        out_h5mu=snakemake.output.h5mu,  # noqa: F821
        out_report=snakemake.output.report,  # noqa: F821
        out_umap=snakemake.output.umap,  # noqa: F821
    )
