"""Snakemake adapter: simulated Hi-C, one .cool per cell type, for one sample."""

from grids.simulate import SimulationParams, build_regulatory_model, write_hic_cool
from grids.workflow import logged

with logged(snakemake.log[0]):
    model = build_regulatory_model(SimulationParams(**snakemake.params.simulation))
    for cell_type, path in zip(snakemake.params.cell_types, snakemake.output.cools, strict=True):
        write_hic_cool(model, cell_type, path)
