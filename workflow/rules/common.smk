# Shared helpers: config and sample-sheet checks, and the file lists rules request.
import pandas as pd

from grids.config import ConfigError, check_config, check_samples, read_samples, read_targets
from grids.simulate import cell_type_names, make_params, sample_output_files, sample_output_paths


def _load_inputs():
    """Validate everything before the DAG is built, so bad input stops before any job runs."""
    try:
        check_config(config)
        sheet = read_samples(config["samples"])
        validate(sheet, "../schemas/samples.schema.yaml")
        checked = check_samples(sheet, config, config["samples"])
        target_table = read_targets(config["targets"])
        validate(target_table, "../schemas/targets.schema.yaml")
    except ConfigError as err:
        raise WorkflowError(str(err)) from None
    return checked, target_table


samples, targets = _load_inputs()
SIMULATED_SAMPLES = list(config["simulate"]["samples"])


wildcard_constraints:
    sample="|".join(samples["sample"]),


def simulation_params():
    """SimulationParams for the configured preset, seed and overrides."""
    sim = config["simulate"]
    return make_params(sim["preset"], sim["seed"], **sim["overrides"])


def simulated_cell_types():
    return cell_type_names(simulation_params().n_cell_types) if SIMULATED_SAMPLES else []


def simulated_files(sample):
    """Every file the simulator writes for one sample, keyed by role."""
    return sample_output_paths(f"results/simulated/{sample}", simulated_cell_types())


def simulated_sample_targets():
    """All simulator outputs of all simulated samples (a flat list)."""
    return [
        path
        for sample in SIMULATED_SAMPLES
        for path in sample_output_files(f"results/simulated/{sample}", simulated_cell_types())
    ]
