"""Snakemake adapter: BAM with cell-barcode tags -> 10x fragments."""

from grids.atac.bam import bam_to_fragments
from grids.io import read_chrom_sizes
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    bam_to_fragments(
        snakemake.input.bam,  # noqa: F821
        snakemake.output.fragments,  # noqa: F821
        chrom_sizes=read_chrom_sizes(snakemake.input.chrom_sizes),  # noqa: F821
    )
