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
        expand("results/explain/{{method}}/{key}{suffix}", key=explain_keys(), suffix=[".tsv", ".bedpe", ".interact.bed"]),
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
