"""Snakemake adapter: simulated Hi-C for one cell type."""

from grids.simulate import build_regulatory_model, write_hic_cool
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    model = build_regulatory_model(snakemake.params.simulation)  # noqa: F821
    write_hic_cool(model, snakemake.wildcards.cell_type, snakemake.output.cool)  # noqa: F821
