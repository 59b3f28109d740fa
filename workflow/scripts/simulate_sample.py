"""Snakemake adapter: simulate one sample (everything but Hi-C)."""

from pathlib import Path

from grids.simulate import SimulationParams, simulate_sample
from grids.workflow import logged

with logged(snakemake.log[0]):
    simulate_sample(
        SimulationParams(**snakemake.params.simulation),
        snakemake.wildcards.sample,
        Path(snakemake.output.fragments).parent,
        hic=False,
    )
