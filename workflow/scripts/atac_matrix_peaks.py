"""Snakemake adapter: peaks.bed from the imported peak matrices."""

from grids.workflow import logged
from grids.workflow.stages.atac import write_matrix_peaks

with logged(snakemake.log[0]):
    write_matrix_peaks(snakemake.input.matrices, snakemake.output.peaks)
