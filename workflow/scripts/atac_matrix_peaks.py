"""Snakemake adapter: peaks.bed from the imported peak matrices."""

from grids.atac.stage import write_matrix_peaks
from grids.workflow import logged

with logged(snakemake.log[0]):
    write_matrix_peaks(snakemake.input.matrices, snakemake.output.peaks)
