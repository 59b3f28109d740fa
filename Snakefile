# GRIDS: redundant cis-regulatory element sets from single-cell multiome data.
# Thin entry point: the logic lives in the grids package (src/grids), the rules in workflow/rules.
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# The rules import the grids package of this checkout, so a Snakemake that runs every job in its
# conda env (--sdm conda) needs no pip install of it; the jobs find it through workflow/scripts/grids.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/atac.smk"
include: "workflow/rules/rna.smk"
include: "workflow/rules/surrogate.smk"
include: "workflow/rules/explain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/redundancy.smk"


rule all:
    input:
        simulated_sample_targets(),
        "results/atac/atac.h5ad",
        "results/atac/qc.png",
        "results/multiome/paired.h5mu",
        "results/surrogate/model.pt",
        [explain_files(method) for method in config["explain"]["methods"]],
        evaluate_files(),
        redundancy_files(),
        # Only with explain.genes other than targets (none by default).
        genome_wide_files(),
    default_target: True
