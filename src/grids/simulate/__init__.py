"""Ground-truth multiome simulator: the embedded demo data and the planted regulation."""

from .hic import loop_pixels, write_hic_cool
from .model import LINK_KINDS, MITO_GENES, RegulatoryModel, build_regulatory_model
from .params import PRESETS, SimulationParams, cell_type_names, make_params
from .sample import barcode_whitelist, sample_output_files, sample_output_paths, simulate_sample
from .targets import redundancy_targets

__all__ = [
    "LINK_KINDS",
    "MITO_GENES",
    "PRESETS",
    "RegulatoryModel",
    "SimulationParams",
    "barcode_whitelist",
    "build_regulatory_model",
    "cell_type_names",
    "make_params",
    "sample_output_files",
    "sample_output_paths",
    "simulate_sample",
    "redundancy_targets",
    "loop_pixels",
    "write_hic_cool",
]
