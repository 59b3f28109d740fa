"""Snakemake adapter: MACS on one pseudobulk."""

from pathlib import Path

from grids.atac.peaks import call_peaks
from grids.io import read_chrom_sizes
from grids.workflow import logged

with logged(snakemake.log[0]):
    atac = snakemake.params.atac
    wildcards = snakemake.wildcards
    genome_size = atac["genome_size"]
    if genome_size == "chrom_sizes":
        genome_size = sum(read_chrom_sizes(snakemake.input.chrom_sizes).values())
    narrow = Path(snakemake.output.narrowpeak)
    call_peaks(
        Path(snakemake.input.insertions) / f"{wildcards.group}.bed",
        narrow.parent,
        f"{wildcards.sample}.{wildcards.group}",
        genome_size=genome_size,
        caller=atac["peak_caller"],
        shift=atac["macs_shift"],
        extsize=atac["macs_extsize"],
        qvalue=atac["macs_qvalue"],
        nolambda=atac["macs_nolambda"],
    )
