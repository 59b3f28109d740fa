# The cross-modal ATAC -> RNA surrogate (docs/architecture.md §4).


rule train_surrogate:
    input:
        paired="results/multiome/paired.h5mu",
        targets=config["targets"],
        gtf=config["genome"]["gtf"],
    output:
        model="results/surrogate/model.pt",
        metrics="results/surrogate/metrics.json",
        heatmap=report("results/surrogate/markers_heatmap.png", caption="../report/surrogate.rst",
                       category="3. Surrogate"),
        umap=report("results/surrogate/markers_umap.png", caption="../report/surrogate.rst",
                    category="3. Surrogate"),
        predictors=report("results/surrogate/predictors.png", caption="../report/surrogate_predictors.rst",
                          category="3. Surrogate"),
    params:
        # Every surrogate key but the two that change no output (the stage reads keys with
        # defaults, so a key left out would silently take its default): device goes as the
        # resolved device, checkpoint_every (how often training state is saved) as a resource.
        settings={k: v for k, v in sorted(config["surrogate"].items()) if k not in ("device", "checkpoint_every")},
        device=resolved_device(config["surrogate"]["device"], SURROGATE_USES_GPU),
        checkpoint="results/surrogate/checkpoint.pt",
    log:
        "logs/surrogate/train.log",
    threads: 2
    resources:
        gpu=int(SURROGATE_USES_GPU),
        mem_mb=lambda wildcards, input: 3000 + int(input.size_mb * 30),
        runtime=lambda wildcards, input: 30 + int(input.size_mb),
        # Performance only: saving the training state (for resuming) draws no random numbers.
        checkpoint_every=config["surrogate"]["checkpoint_every"],
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_surrogate.py"
