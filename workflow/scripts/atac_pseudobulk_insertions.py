"""Snakemake adapter: Tn5 insertions of each pseudobulk (all cells, optionally per cell type)."""

from pathlib import Path

from grids.atac.peaks import write_insertions
from grids.atac.stage import cell_groups
from grids.io import read_chrom_sizes
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    atac = snakemake.params.atac  # noqa: F821
    outdir = Path(snakemake.output.insertions)  # noqa: F821
    names = snakemake.params.groups  # noqa: F821
    groups = cell_groups(snakemake.input.barcodes, snakemake.params.labels, len(names) > 1)  # noqa: F821
    write_insertions(
        snakemake.input.fragments,  # noqa: F821
        read_chrom_sizes(snakemake.input.chrom_sizes),  # noqa: F821
        groups,
        {name: outdir / f"{name}.bed" for name in names},
        chunk_size=snakemake.resources.fragment_chunk_size,  # noqa: F821
        skip_unknown_chroms=atac["skip_unknown_chromosomes"],
    )
