# Shared helpers: config and sample-sheet checks, and the file lists rules request.
import dataclasses

import pandas as pd

from grids.workflow.config import ConfigError, check_config, check_samples, read_samples, read_targets
from grids.explain.genome_wide import genes_mode, genome_wide_cell_types, genome_wide_shards
from grids.explain.methods import METHODS as EXPLAIN_METHODS, gpu_methods
from grids.explain.tasks import explain_tasks, set_target, shard_settings, shard_tasks
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


# ---- What rules are given of the config ------------------------------------------------------
# Snakemake reruns a job when its params change, so a rule's params hold only the settings that
# change its outputs, never a whole config section: a change to another key of the section, or to
# the order of config.yaml, then reruns nothing. Where a script reads its keys as settings[key], a
# key missing here fails loudly, so the rules list the keys they use (config_keys); where the stage
# reads keys with defaults (surrogate, explain, redundancy), the rules leave out the few keys that
# change no output instead, so a key added later reruns a job rather than being dropped silently.
# Performance-only settings (atac.chunk_size, surrogate.checkpoint_every) travel as resources,
# which Snakemake never reruns a job for; config/README.md lists them.
def config_keys(section, *keys):
    """``{key: config[section][key]}`` for these keys, in this order."""
    return {key: config[section][key] for key in keys}


def resolved_device(setting, uses_gpu):
    """The device setting a torch job is given: ``cpu`` whenever it will run on the CPU, so that
    auto and cpu on a node without a GPU (the same computation) are the same param; on a GPU the
    setting itself (auto still falls back to the CPU when torch sees no CUDA). CPU and GPU results
    differ in the last bits, enough to change a search, so switching between them does rerun."""
    return setting if uses_gpu else "cpu"


wildcard_constraints:
    sample="|".join(samples["sample"]),


def simulation_params():
    """SimulationParams for the configured preset, seed and overrides."""
    sim = config["simulate"]
    return make_params(sim["preset"], sim["seed"], **sim["overrides"])


def simulation_settings(wildcards):
    """Every simulator parameter as a plain dict: the simulate rules' param, so that a changed
    seed, preset or override reruns the simulation (Snakemake cannot compare a dataclass).
    Tuples become lists, as they come back from Snakemake's JSON record of the params."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(simulation_params()).items()}


def simulated_cell_types():
    return cell_type_names(simulation_params().n_cell_types) if SIMULATED_SAMPLES else []


def simulated_files(sample):
    """Every file the simulator writes for one sample, keyed by role."""
    return sample_output_paths(f"results/simulated/{sample}", simulated_cell_types())


def simulated_sample_targets():
    """All simulator outputs of all simulated samples (a flat list). The Hi-C maps depend only
    on the regulatory model, which every sample shares, so only the first sample's are made
    (the config's hic.files point there); a later sample's map is one rule away when asked for."""
    return [
        path
        for index, sample in enumerate(SIMULATED_SAMPLES)
        for path in sample_output_files(f"results/simulated/{sample}", simulated_cell_types() if index == 0 else [])
    ]


# ---- ATAC inputs ----------------------------------------------------------------------------
def atac_mode(sample):
    """How a sample's ATAC data arrives: fragments, bam, or a precomputed peak matrix."""
    row = samples.loc[sample]
    for column in ("fragments", "bam", "atac_matrix"):
        if row[column]:
            return column
    raise WorkflowError(f"sample {sample!r} has no ATAC input")


def fragments_file(sample):
    """The sample's fragments: as given, or converted from its BAM by the workflow."""
    if atac_mode(sample) == "bam":
        return f"results/atac/{sample}/fragments.tsv.gz"
    return samples.loc[sample, "fragments"]


def rna_file(sample):
    return samples.loc[sample, "rna"]


def pseudobulks(sample):
    """Pseudobulk names for peak calling: every cell, plus each cell type when configured."""
    groups = ["all"]
    if config["atac"]["call_per_cell_type"]:
        groups += sample_cell_types(sample)
    return groups


def sample_cell_types(sample):
    """Cell types in the sample's label file (simulated samples: the simulator's types)."""
    from grids.workflow.stages.atac import safe_group_name

    if sample in SIMULATED_SAMPLES:
        return [safe_group_name(c) for c in simulated_cell_types()]
    labels = samples.loc[sample, "cell_types"]
    if not labels:
        raise WorkflowError(
            f"atac.call_per_cell_type is on but sample {sample!r} has no cell_types file in {config['samples']}"
        )
    table = pd.read_csv(labels, sep="\t", dtype=str)
    return sorted({safe_group_name(c) for c in table["cell_type"].dropna()})


def atac_cell_calling():
    """atac.cells, and the thresholds only where they call cells (threshold mode): with cells: rna
    they are reported, not applied, so changing them reruns no ATAC job (pairing still uses them)."""
    if config["atac"]["cells"] == "threshold":
        return config_keys("atac", "cells", "min_fragments", "min_tss_enrichment")
    return config_keys("atac", "cells")


def rna_settings():
    """The rna keys the RNA stage reads (grids.workflow.stages.rna.run_rna_stage): min_cells_per_type is the
    pairing's, and markers and leiden_resolution matter only when labels are inferred."""
    keys = ["labels", "min_genes", "max_genes", "min_umis", "max_umis", "percent_mito", "robust_percent_cells",
            "n_top_genes", "batch_aware_hvg", "seed"]
    if config["rna"]["labels"] == "infer":
        keys += ["markers", "leiden_resolution"]
    return config_keys("rna", *keys)


def narrowpeak_files():
    return [
        f"results/atac/{sample}/{sample}.{group}_peaks.narrowPeak"
        for sample in samples["sample"]
        for group in pseudobulks(sample)
    ]


ATAC_MODES = {atac_mode(s) for s in samples["sample"]}
ATAC_FROM_FRAGMENTS = "atac_matrix" not in ATAC_MODES
if not ATAC_FROM_FRAGMENTS and len(ATAC_MODES) > 1:
    raise WorkflowError(
        f"{config['samples']}: samples mix precomputed peak matrices (atac_matrix) with fragments/BAMs; "
        "give fragments for every sample (peaks are then called jointly) or matrices for every sample"
    )


def uses_gpu(device):
    """Whether a torch job with this device setting will ask for a GPU: ``cuda``, or ``auto`` on a
    node with an NVIDIA GPU. Probed without torch, so starting Snakemake stays fast."""
    if device != "auto":
        return device == "cuda"
    from grids.workflow.gpus import visible_gpus

    return bool(visible_gpus())


# Probed once per run, not once per job: with device auto the probe may run nvidia-smi.
SURROGATE_USES_GPU = uses_gpu(config["surrogate"]["device"])
EXPLAIN_USES_GPU = uses_gpu(config["explain"]["device"])


EXPLAIN = config["explain"]
EXPLAIN_TASKS = explain_tasks(
    targets,
    EXPLAIN["cell_types"] or list(dict.fromkeys(targets["cell_type"])),
    EXPLAIN["top_n_genes"],
    per_gene=EXPLAIN["per_gene"],
    per_cell_type=EXPLAIN["per_cell_type"],
)
# Shard i of every method holds the same tasks (EXPLAIN_TASKS[i * shard_size:][:shard_size]):
# numbering is per method and independent of explain.methods, so adding or removing a method
# changes no other method's shard files or params (explain_shard_settings).
EXPLAIN_SHARDS = shard_tasks(EXPLAIN_TASKS, EXPLAIN["shard_size"])
# Methods that run the surrogate many times and gain from a GPU (the method registry says).
GPU_METHODS = gpu_methods()


def explain_shard_tasks(wildcards):
    return EXPLAIN_SHARDS[int(wildcards.shard)]


def explain_shard_settings(wildcards):
    """The explain settings that decide this method's selections for this shard's tasks only
    (grids.explain.tasks.shard_settings): not explain.methods, shard_size or device, nor the
    settings of other methods."""
    return shard_settings(wildcards.method, EXPLAIN, explain_shard_tasks(wildcards))


def explain_shard_mito_prefix(wildcards):
    """genome.mito_prefix leaves mitochondrial genes out of gene sets; a shard of per-gene tasks ignores it."""
    return config["genome"]["mito_prefix"] if any(t.kind == "set" for t in explain_shard_tasks(wildcards)) else ""


def explain_device(wildcards):
    """CPU for the methods that never use a GPU, else the resolved explain.device."""
    return resolved_device(EXPLAIN["device"], wildcards.method in GPU_METHODS and EXPLAIN_USES_GPU)


def explain_gpus(wildcards):
    """GPUs an explain shard asks Snakemake for: one for the GPU methods when explain.device uses CUDA."""
    return int(wildcards.method in GPU_METHODS and EXPLAIN_USES_GPU)


def explain_keys():
    """``L{L}/{cell_type}__{target}`` for every selection of one method."""
    return [f"L{L}/{task.stem}" for L in EXPLAIN["L"] for task in EXPLAIN_TASKS]


def explain_files(method, suffixes=(".tsv", ".bedpe", ".interact.bed")):
    files = [f"results/explain/{method}/{key}{suffix}" for key in explain_keys() for suffix in suffixes]
    if method == "grids":
        files += [f"results/explain/grids/{key}.curve.png" for key in explain_keys()]
    return files


def explain_shard_files(method, suffix):
    return [f"results/explain/{method}/shards/shard{i}{suffix}" for i in range(len(EXPLAIN_SHARDS))]


def all_shard_files(suffix):
    """The explain shards of every configured method."""
    return [path for method in EXPLAIN["methods"] for path in explain_shard_files(method, suffix)]


def track_figure_files():
    """Genome-track PNG per per-gene target (the first evaluate.track_figures of them)."""
    genes = [task for task in EXPLAIN_TASKS if task.kind == "gene"][: config["evaluate"]["track_figures"]]
    return {task.stem: f"results/evaluate/tracks/{task.stem}.png" for task in genes}


def evaluate_files():
    """Everything the evaluate rules write that rule all asks for."""
    files = [
        "results/evaluate/expression_drop.tsv",
        "results/evaluate/hit_ratio.tsv",
        "results/evaluate/hic_validation.tsv",
        *track_figure_files().values(),
    ]
    if any(task.kind == "set" for task in EXPLAIN_TASKS):
        files.append("results/evaluate/cross_celltype.tsv")
    if config["evaluate"]["truth"]:
        files += ["results/evaluate/ground_truth.tsv", "results/evaluate/redundancy_summary.tsv",
                  "results/evaluate/redundancy_calls.tsv"]
    return files


# ---- Genome-wide explanations (explain.genes; grids.explain.genome_wide) -------------------------
# The genes are known only once the paired file exists: the checkpoint explain_genome_wide_tasks
# writes the task list, and the shards and the gathering rule read it through the functions below.
# With explain.genes: targets (the default) none of this enters the DAG.
GENOME_WIDE = genes_mode(EXPLAIN["genes"]) != "targets"
try:
    GENOME_WIDE_CELL_TYPES = genome_wide_cell_types(EXPLAIN, targets) if GENOME_WIDE else []
except ValueError as err:
    raise WorkflowError(str(err)) from None
GENOME_WIDE_TASKS = "results/explain/genome_wide/tasks.tsv"


def genome_wide_plan():
    """The settings that decide the genome-wide task list (the checkpoint's params): the genes,
    the cell types, the shard size, and the mitochondrial prefix where top-N genes leave it out."""
    plan = {"genes": EXPLAIN["genes"], "cell_types": GENOME_WIDE_CELL_TYPES, "shard_size": EXPLAIN["shard_size"]}
    if genes_mode(EXPLAIN["genes"]) == "top":
        plan["mito_prefix"] = config["genome"]["mito_prefix"]
    return plan


def genome_wide_task_file(wildcards):
    """The checkpoint's task list: asking for it makes the jobs that read it wait for the checkpoint."""
    return checkpoints.explain_genome_wide_tasks.get().output.tasks


def genome_wide_shard_tasks(wildcards, input):
    return genome_wide_shards(input.tasks)[int(wildcards.shard)]


def genome_wide_shard_settings(wildcards, input):
    """As explain_shard_settings: what decides this method's selections for this shard's tasks."""
    return shard_settings(wildcards.method, EXPLAIN, genome_wide_shard_tasks(wildcards, input))


def genome_wide_shard_files(suffix):
    """Input function: ``results/explain/{method}/genome_wide/shard{i}{suffix}`` of every shard of
    the checkpoint's task list."""

    def files(wildcards):
        shards = genome_wide_shards(genome_wide_task_file(wildcards))
        return [f"results/explain/{wildcards.method}/genome_wide/shard{i}{suffix}" for i in range(len(shards))]

    return files


def genome_wide_outputs(method):
    """The outputs of explain_genome_wide for one method (may be the ``{method}`` wildcard), by role;
    per L the table and figure, and per cell type the BEDPE and the interact track."""
    from grids.explain.tasks import cell_type_stem

    out = {"tables": [], "figures": [], "tracks": []}
    for L in EXPLAIN["L"]:
        base = f"results/explain/{method}/L{L}"
        out["tables"].append(f"{base}/genome_wide.tsv.gz")
        out["figures"].append(f"{base}/genome_wide.png")
        out["tracks"] += [f"{base}/genome_wide/{cell_type_stem(c)}{suffix}" for c in GENOME_WIDE_CELL_TYPES
                          for suffix in (".bedpe", ".interact.bed")]
    return out


def genome_wide_files():
    """For the all target: every method's genome-wide outputs, or none with explain.genes: targets."""
    if not GENOME_WIDE:
        return []
    return [path for method in EXPLAIN["methods"] for paths in genome_wide_outputs(method).values() for path in paths]


# ---- Redundancy maps (docs/architecture.md §5b) -----------------------------------------------------------
REDUNDANCY = config["redundancy"]
_UNMAPPABLE = [m for m in REDUNDANCY["methods"] if m not in EXPLAIN["methods"]]
if _UNMAPPABLE:
    raise WorkflowError(
        f"config key redundancy.methods: {', '.join(_UNMAPPABLE)} not in explain.methods "
        f"({', '.join(EXPLAIN['methods'])}); a method is mapped from its explain selections"
    )


def redundancy_methods():
    """Methods whose selections are mapped (redundancy.methods)."""
    return list(REDUNDANCY["methods"])


def redundancy_map_files(method=None, suffix=".tsv"):
    """``results/redundancy/{method}/L{L}/{cell_type}__{target}{suffix}`` of every selection of
    ``method`` (may be the ``{method}`` wildcard), or of every mapped method when None."""
    methods = [method] if method else redundancy_methods()
    return [f"results/redundancy/{m}/{key}{suffix}" for m in methods for key in explain_keys()]


def redundancy_files():
    """For the all target: the summary and every mapped method's tables, BEDPEs and figures."""
    maps = [path for suffix in (".tsv", ".bedpe", ".png") for path in redundancy_map_files(suffix=suffix)]
    return ["results/redundancy/summary.tsv", "results/redundancy/summary.png", *maps]
