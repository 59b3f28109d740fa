"""Snakemake adapter: merge pseudobulk peaks into the consensus set."""

from grids.atac.peaks import consensus_peaks, write_peaks_bed
from grids.io import read_chrom_sizes
from grids.workflow import logged

with logged(snakemake.log[0]):
    peaks = consensus_peaks(
        snakemake.input.narrowpeaks,
        read_chrom_sizes(snakemake.input.chrom_sizes),
        blacklist=snakemake.input.blacklist or None,
        exclude_chromosomes=snakemake.params.exclude,
    )
    write_peaks_bed(peaks, snakemake.output.peaks)
