"""Snakemake adapter: a precomputed peak matrix (Cell Ranger ARC h5, h5ad, h5mu) as ATAC input."""

from grids.atac.stage import run_import_matrix
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    atac = snakemake.params.atac  # noqa: F821
    run_import_matrix(
        sample=snakemake.wildcards.sample,  # noqa: F821
        matrix=snakemake.input.matrix,  # noqa: F821
        chrom_sizes=snakemake.input.chrom_sizes,  # noqa: F821
        rna=snakemake.input.rna if atac["cells"] == "rna" else None,  # noqa: F821
        exclude_chromosomes=atac["exclude_chromosomes"],
        out_h5ad=snakemake.output.h5ad,  # noqa: F821
    )
