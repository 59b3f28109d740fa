"""Snakemake adapter: a precomputed peak matrix (Cell Ranger ARC h5, h5ad, h5mu) as ATAC input."""

from grids.workflow import logged
from grids.workflow.stages.atac import run_import_matrix

with logged(snakemake.log[0]):
    atac = snakemake.params.atac
    run_import_matrix(
        sample=snakemake.wildcards.sample,
        matrix=snakemake.input.matrix,
        chrom_sizes=snakemake.input.chrom_sizes,
        rna=snakemake.input.rna if atac["cells"] == "rna" else None,
        exclude_chromosomes=atac["exclude_chromosomes"],
        out_h5ad=snakemake.output.h5ad,
    )
