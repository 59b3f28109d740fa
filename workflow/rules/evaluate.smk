# Evaluation of the selections (docs/architecture.md §6): drops, hit ratios, Hi-C, ground truth, cross-cell-type,
# tracks.

EVALUATE = config["evaluate"]


rule evaluate_expression_drop:
    input:
        model="results/surrogate/model.pt",
        paired="results/multiome/paired.h5mu",
        tables=all_shard_files(".tsv"),
        metas=all_shard_files(".json"),
    output:
        table=report("results/evaluate/expression_drop.tsv", caption="../report/expression_drop.rst",
                     category="4. Expression drop", labels={"result": "every selection (table)"}),
        genes=report("results/evaluate/expression_drop_genes.tsv", caption="../report/expression_drop_wide.rst",
                     category="4. Expression drop", labels={"result": "Table 1, per-gene targets (table)"}),
        sets=report("results/evaluate/expression_drop_sets.tsv", caption="../report/expression_drop_wide.rst",
                    category="4. Expression drop", labels={"result": "Table 2, per-cell-type gene sets (table)"}),
        tests=report("results/evaluate/expression_drop_tests.tsv", caption="../report/expression_drop_tests.rst",
                     category="4. Expression drop", labels={"result": "paired t-tests (table)"}),
        figure=report("results/evaluate/expression_drop.png", caption="../report/expression_drop.rst",
                      category="4. Expression drop", labels={"result": "Rel Δ heatmaps (figure)"}),
    params:
        split=EVALUATE["split"],
    log:
        "logs/evaluate/expression_drop.log",
    resources:
        mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 10),
        runtime=30,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_expression_drop.py"


rule evaluate_cross_celltype:
    input:
        model="results/surrogate/model.pt",
        paired="results/multiome/paired.h5mu",
        # Only evaluate.cross_method's selections enter the matrix (the gene sets' members are the
        # same in every method's shards), so adding or dropping another method reruns nothing here.
        tables=explain_shard_files(EVALUATE["cross_method"], ".tsv"),
        metas=explain_shard_files(EVALUATE["cross_method"], ".json"),
        targets=config["targets"],
    output:
        table="results/evaluate/cross_celltype.tsv",
        figure=report("results/evaluate/cross_celltype.png", caption="../report/cross_celltype.rst",
                      category="8. Cross-cell-type"),
    params:
        split=EVALUATE["split"],
        method=EVALUATE["cross_method"],
        set_target=set_target(EXPLAIN["top_n_genes"]),
    log:
        "logs/evaluate/cross_celltype.log",
    resources:
        mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 10),
        runtime=30,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_cross_celltype.py"


rule evaluate_hit_ratio:
    input:
        tables=all_shard_files(".tsv"),
        metas=all_shard_files(".json"),
        gtf=config["genome"]["gtf"],
    output:
        table=report("results/evaluate/hit_ratio.tsv", caption="../report/hit_ratio.rst", category="5. Hit ratios",
                     labels={"result": "HR and SHR (table)"}),
        targets="results/evaluate/hit_ratio_targets.tsv",
        figure=report("results/evaluate/hit_ratio.png", caption="../report/hit_ratio.rst", category="5. Hit ratios",
                      labels={"result": "HR and SHR (figure)"}),
    params:
        soft_distance=EVALUATE["soft_hit_distance"],
    log:
        "logs/evaluate/hit_ratio.log",
    resources:
        # The GTF dominates the input; the shard tables are small.
        mem_mb=lambda wildcards, input: 1500 + int(input.size_mb * 5),
        runtime=15,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_hit_ratio.py"


rule evaluate_hic:
    input:
        model="results/surrogate/model.pt",
        tables=all_shard_files(".tsv"),
        metas=all_shard_files(".json"),
        gtf=config["genome"]["gtf"],
        hic=list(config["hic"]["files"].values()),
    output:
        table=report("results/evaluate/hic_validation.tsv", caption="../report/hic.rst", category="6. Hi-C",
                     labels={"result": "per selection (table)"}),
        figure=report("results/evaluate/hic_validation.png", caption="../report/hic.rst", category="6. Hi-C",
                      labels={"result": "obs/exp per method (figure)"}),
    params:
        files=config["hic"]["files"],
        resolution=config["hic"]["resolution"],
        draws=EVALUATE["hic_draws"],
        seed=EVALUATE["seed"],
    log:
        "logs/evaluate/hic.log",
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_hic.py"


rule evaluate_ground_truth:
    input:
        model="results/surrogate/model.pt",
        paired="results/multiome/paired.h5mu",
        tables=all_shard_files(".tsv"),
        metas=all_shard_files(".json"),
        truth=EVALUATE["truth"] or "evaluate.truth-is-not-set",
    output:
        table=report("results/evaluate/ground_truth.tsv", caption="../report/ground_truth.rst",
                     category="7. Ground truth", labels={"result": "precision and recall (table)"}),
        redundancy=report("results/evaluate/redundancy.tsv", caption="../report/redundancy.rst",
                          category="7. Ground truth", labels={"result": "redundancy check (table)"}),
        redundancy_summary=report("results/evaluate/redundancy_summary.tsv", caption="../report/redundancy.rst",
                                  category="7. Ground truth", labels={"result": "redundancy check per logic (table)"}),
        figure=report("results/evaluate/ground_truth.png", caption="../report/ground_truth.rst",
                      category="7. Ground truth", labels={"result": "recall and precision (figure)"}),
        redundancy_figure=report("results/evaluate/redundancy.png", caption="../report/redundancy.rst",
                                 category="7. Ground truth", labels={"result": "redundancy check (figure)"}),
    params:
        split=EVALUATE["split"],
    log:
        "logs/evaluate/ground_truth.log",
    resources:
        mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 10),
        runtime=30,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_ground_truth.py"


# Called redundant pairs (results/redundancy, docs/architecture.md §5b) and OR-group recovery by every
# explain method, against the planted truth. The maps and methods come from the redundancy
# helpers in common.smk (REDUNDANCY, redundancy_map_files), looked up only when this rule is
# asked for, so the workflow parses whichever lands first.
rule evaluate_redundancy_calls:
    input:
        paired="results/multiome/paired.h5mu",
        tables=all_shard_files(".tsv"),
        metas=all_shard_files(".json"),
        truth=EVALUATE["truth"] or "evaluate.truth-is-not-set",
        maps=lambda wildcards: [path for method in REDUNDANCY["methods"]
                                for path in redundancy_map_files(method, ".tsv")],
    output:
        calls=report("results/evaluate/redundancy_calls.tsv", caption="../report/redundancy_calls.rst",
                     category="7. Ground truth", labels={"result": "redundant pair calls (table)"}),
        recovery=report("results/evaluate/group_recovery.tsv", caption="../report/redundancy_calls.rst",
                        category="7. Ground truth", labels={"result": "OR-group recovery (table)"}),
        figure=report("results/evaluate/redundancy_calls.png", caption="../report/redundancy_calls.rst",
                      category="7. Ground truth", labels={"result": "redundant pair calls (figure)"}),
    params:
        methods=lambda wildcards: list(REDUNDANCY["methods"]),
        split=EVALUATE["split"],
        min_cells=EVALUATE.get("redundancy_min_cells", 10),
    log:
        "logs/evaluate/redundancy_calls.log",
    resources:
        mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 10),
        runtime=20,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_redundancy_calls.py"


rule evaluate_tracks:
    input:
        model="results/surrogate/model.pt",
        tables=explain_shard_files(EVALUATE["track_method"], ".tsv"),
        gtf=config["genome"]["gtf"],
        hic=list(config["hic"]["files"].values()),
        truth=[EVALUATE["truth"]] if EVALUATE["truth"] else [],
    output:
        figures=[report(path, caption="../report/tracks.rst", category="9. Genome tracks",
                        labels={"target": stem.replace("__", " / ")})
                 for stem, path in track_figure_files().items()],
    params:
        figures=track_figure_files(),
        method=EVALUATE["track_method"],
        L=max(EXPLAIN["L"]),
        window=EXPLAIN["window"],
        files=config["hic"]["files"],
        resolution=config["hic"]["resolution"],
    log:
        "logs/evaluate/tracks.log",
    resources:
        mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 2),
        runtime=10 + 2 * len(track_figure_files()),
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate_tracks.py"
