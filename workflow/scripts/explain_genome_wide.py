"""Snakemake adapter: one method's genome-wide shards as a table, tracks per cell type and a figure per L."""

from grids.explain.genome_wide import write_genome_wide
from grids.workflow import logged

with logged(snakemake.log[0]):
    write_genome_wide(
        snakemake.input.tables,
        snakemake.input.metas,
        snakemake.input.gtf,
        tasks=snakemake.input.tasks,
        method=snakemake.params.method,
        Ls=snakemake.params.L,
        cell_types=snakemake.params.cell_types,
        out_dir=snakemake.params.out_dir,
    )
