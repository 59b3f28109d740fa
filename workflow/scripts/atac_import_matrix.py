"""Snakemake adapter: a precomputed peak matrix (Cell Ranger ARC h5, h5ad, h5mu) as ATAC input."""

from grids.atac.stage import run_import_matrix
from grids.workflow import logged

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
