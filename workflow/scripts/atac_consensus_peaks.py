"""Snakemake adapter: merge pseudobulk peaks into the consensus set."""

from grids.atac.peaks import consensus_peaks, write_peaks_bed
from grids.io import read_chrom_sizes
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    peaks = consensus_peaks(
        snakemake.input.narrowpeaks,  # noqa: F821
        read_chrom_sizes(snakemake.input.chrom_sizes),  # noqa: F821
        blacklist=snakemake.input.blacklist or None,  # noqa: F821
        exclude_chromosomes=snakemake.params.exclude,  # noqa: F821
    )
    write_peaks_bed(peaks, snakemake.output.peaks)  # noqa: F821
