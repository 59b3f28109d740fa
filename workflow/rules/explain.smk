# Subset selection: GRIDS and the baselines (docs/architecture.md §5), in shards of targets.


wildcard_constraints:
    method="|".join(config["explain"]["methods"]),
    shard=r"\d+",


rule explain_shard:
    input:
        model="results/surrogate/model.pt",
        paired="results/multiome/paired.h5mu",
        gtf=config["genome"]["gtf"],
    output:
        table="results/explain/{method}/shards/shard{shard}.tsv",
        meta="results/explain/{method}/shards/shard{shard}.json",
    # Only what decides this method's selections for this shard's tasks (common.smk): removing or
    # adding a method, or changing another method's settings, reruns none of these shards.
    params:
        tasks=explain_shard_tasks,
        settings=explain_shard_settings,
        mito_prefix=explain_shard_mito_prefix,
        device=explain_device,
        # Finished tasks of an interrupted shard; a rerun redoes only the others (not an output,
        # so Snakemake keeps it when it removes the outputs of a killed job).
        resume="results/explain/{method}/shards/shard{shard}.partial.json",
    log:
        "logs/explain/{method}/shard{shard}.log",
    # From the method registry (grids.explain.methods): SAGE and LIME are bound by Python
    # overhead on one core, so two of their shards run side by side.
    threads: lambda wildcards: EXPLAIN_METHODS[wildcards.method].threads
    resources:
        gpu=explain_gpus,
        mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 20),
        runtime=lambda wildcards: 20 + 5 * config["explain"]["shard_size"],
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/explain_shard.py"


rule explain_tracks:
    input:
        tables=lambda wildcards: explain_shard_files(wildcards.method, ".tsv"),
        metas=lambda wildcards: explain_shard_files(wildcards.method, ".json"),
        gtf=config["genome"]["gtf"],
    output:
        expand("results/explain/{{method}}/{key}{suffix}", key=explain_keys(),
               suffix=[".tsv", ".bedpe", ".interact.bed"]),
    params:
        selections=explain_keys(),
        method=lambda wildcards: wildcards.method,
        out_dir=lambda wildcards, output: output[0].rsplit("/", 2)[0],
    log:
        "logs/explain/{method}/tracks.log",
    resources:
        mem_mb=lambda wildcards, input: 1000 + int(input.size_mb * 5),
        runtime=10 + len(explain_keys()) // 100,
    wildcard_constraints:
        method="|".join(m for m in config["explain"]["methods"] if m != "grids") or "none",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/explain_tracks.py"


use rule explain_tracks as explain_tracks_grids with:
    input:
        tables=explain_shard_files("grids", ".tsv"),
        metas=explain_shard_files("grids", ".json"),
        gtf=config["genome"]["gtf"],
    output:
        expand("results/explain/grids/{key}{suffix}", key=explain_keys(),
               suffix=[".tsv", ".bedpe", ".interact.bed", ".curve.png"]),
    params:
        selections=explain_keys(),
        method="grids",
        out_dir=lambda wildcards, output: output[0].rsplit("/", 2)[0],
    log:
        "logs/explain/grids/tracks.log",


# ---- Genome-wide explanations (explain.genes; docs/architecture.md §3 and §5) ----------------------
# Which genes is known only after the RNA stage, so a checkpoint writes the task list; the shards run
# the per-target shard code on it, explain.shard_size tasks per job, and one job per method gathers them.
checkpoint explain_genome_wide_tasks:
    input:
        paired="results/multiome/paired.h5mu",
    output:
        tasks=GENOME_WIDE_TASKS,
    params:
        # A function, so gene names are never read as wildcard patterns.
        plan=lambda wildcards: genome_wide_plan(),
    log:
        "logs/explain/genome_wide/tasks.log",
    resources:
        mem_mb=lambda wildcards, input: 1000 + int(input.size_mb * 10),
        runtime=10,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/explain_genome_wide_tasks.py"


use rule explain_shard as explain_genome_wide_shard with:
    input:
        model="results/surrogate/model.pt",
        paired="results/multiome/paired.h5mu",
        gtf=config["genome"]["gtf"],
        tasks=genome_wide_task_file,
    output:
        table="results/explain/{method}/genome_wide/shard{shard}.tsv",
        meta="results/explain/{method}/genome_wide/shard{shard}.json",
    params:
        tasks=genome_wide_shard_tasks,
        settings=genome_wide_shard_settings,
        mito_prefix="",  # per-gene tasks only
        device=explain_device,
        resume="results/explain/{method}/genome_wide/shard{shard}.partial.json",
    log:
        "logs/explain/{method}/genome_wide/shard{shard}.log",


rule explain_genome_wide:
    input:
        tables=genome_wide_shard_files(".tsv"),
        metas=genome_wide_shard_files(".json"),
        tasks=genome_wide_task_file,
        gtf=config["genome"]["gtf"],
    output:
        tables=genome_wide_outputs("{method}")["tables"],
        figures=[
            report(path, caption="../report/genome_wide.rst", category="11. Genome-wide", subcategory="{method}",
                   labels={"method": "{method}", "L": str(L)})
            for L, path in zip(EXPLAIN["L"], genome_wide_outputs("{method}")["figures"])
        ],
        tracks=genome_wide_outputs("{method}")["tracks"],
    params:
        method=lambda wildcards: wildcards.method,
        L=EXPLAIN["L"],
        cell_types=GENOME_WIDE_CELL_TYPES,
        out_dir=lambda wildcards: f"results/explain/{wildcards.method}",
    log:
        "logs/explain/{method}/genome_wide.log",
    resources:
        mem_mb=lambda wildcards, input: 1500 + int(input.size_mb * 10),
        runtime=lambda wildcards, input: 10 + len(input.tables) // 50,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/explain_genome_wide.py"
