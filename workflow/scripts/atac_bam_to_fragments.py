"""Snakemake adapter: BAM with cell-barcode tags -> 10x fragments."""

from grids.atac.bam import bam_to_fragments
from grids.io import read_chrom_sizes
from grids.workflow import logged

with logged(snakemake.log[0]):
    bam_to_fragments(
        snakemake.input.bam,
        snakemake.output.fragments,
        chrom_sizes=read_chrom_sizes(snakemake.input.chrom_sizes),
    )
