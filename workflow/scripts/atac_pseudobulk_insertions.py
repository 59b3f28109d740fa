"""Snakemake adapter: Tn5 insertions of each pseudobulk (all cells, optionally per cell type)."""

from pathlib import Path

from grids.atac.peaks import write_insertions
from grids.io import read_chrom_sizes
from grids.workflow import logged
from grids.workflow.stages.atac import cell_groups

with logged(snakemake.log[0]):
    atac = snakemake.params.atac
    outdir = Path(snakemake.output.insertions)
    names = snakemake.params.groups
    groups = cell_groups(snakemake.input.barcodes, snakemake.params.labels, len(names) > 1)
    write_insertions(
        snakemake.input.fragments,
        read_chrom_sizes(snakemake.input.chrom_sizes),
        groups,
        outputs={name: outdir / f"{name}.bed" for name in names},
        chunk_size=snakemake.resources.fragment_chunk_size,
        skip_unknown_chroms=atac["skip_unknown_chromosomes"],
    )
