"""Snakemake adapter: simulate one sample (everything but Hi-C)."""

from pathlib import Path

from grids.simulate import SimulationParams, simulate_sample
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    simulate_sample(
        SimulationParams(**snakemake.params.simulation),  # noqa: F821
        snakemake.wildcards.sample,  # noqa: F821
        Path(snakemake.output.fragments).parent,  # noqa: F821
        hic=False,
    )
