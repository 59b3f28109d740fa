# GRIDS: redundant cis-regulatory element sets from single-cell multiome data.
# Thin entry point: the logic lives in the grids package (src/grids), the rules in workflow/rules.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/atac.smk"
include: "workflow/rules/rna.smk"
include: "workflow/rules/surrogate.smk"
include: "workflow/rules/explain.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        simulated_sample_targets(),
        "results/atac/atac.h5ad",
        "results/atac/qc.png",
        "results/multiome/paired.h5mu",
        "results/surrogate/model.pt",
        [explain_files(method) for method in config["explain"]["methods"]],
        evaluate_files(),
    default_target: True
