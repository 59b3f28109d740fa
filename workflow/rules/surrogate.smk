# The cross-modal ATAC -> RNA surrogate (DESIGN §4).


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
    params:
        settings=config["surrogate"],
        checkpoint="results/surrogate/checkpoint.pt",
    log:
        "logs/surrogate/train.log",
    threads: 2
    resources:
        gpu=int(SURROGATE_USES_GPU),
        mem_mb=lambda wildcards, input: 3000 + int(input.size_mb * 30),
        runtime=lambda wildcards, input: 30 + int(input.size_mb),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_surrogate.py"
