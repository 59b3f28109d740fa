"""Snakemake adapter (checkpoint): the genome-wide explain tasks of explain.genes, once the paired file exists."""

from grids.explain.genome_wide import write_genome_wide_tasks
from grids.workflow import logged

with logged(snakemake.log[0]):
    plan = snakemake.params.plan
    write_genome_wide_tasks(
        paired=snakemake.input.paired,
        genes=plan["genes"],
        cell_types=plan["cell_types"],
        mito_prefix=plan.get("mito_prefix", ""),
        shard_size=plan["shard_size"],
        out=snakemake.output.tasks,
    )
