# Redundancy maps (docs/architecture.md §5b): necessity, sufficiency and pairwise interaction of the top
# selected peaks of every explain target, on held-out cells; one job per method.

# The helpers (REDUNDANCY, redundancy_methods, redundancy_map_files, redundancy_files) live in
# common.smk, beside the explain helpers they build on.


rule redundancy_map:
    input:
        model="results/surrogate/model.pt",
        paired="results/multiome/paired.h5mu",
        gtf=config["genome"]["gtf"],
        tables=lambda wildcards: explain_shard_files(wildcards.method, ".tsv"),
        metas=lambda wildcards: explain_shard_files(wildcards.method, ".json"),
    output:
        maps=redundancy_map_files("{method}", ".tsv"),
        bedpe=redundancy_map_files("{method}", ".bedpe"),
        figures=[
            report(f"results/redundancy/{{method}}/L{L}/{task.stem}.png", caption="../report/redundancy_map.rst",
                   category="10. Redundancy maps", subcategory="{method}",
                   labels={"method": "{method}", "L": str(L), "target": f"{task.cell_type} {task.target}"})
            for L in EXPLAIN["L"]
            for task in EXPLAIN_TASKS
        ],
        summary="results/redundancy/{method}/summary.tsv",
    params:
        selections=explain_keys(),
        split=config["evaluate"]["split"],
        window=EXPLAIN["window"],
        # redundancy.methods decides which methods are mapped (the method wildcard), not a map.
        settings={k: v for k, v in sorted(REDUNDANCY.items()) if k != "methods"},
        out_dir=lambda wildcards: f"results/redundancy/{wildcards.method}",
    log:
        "logs/redundancy/{method}.log",
    threads: 2
    resources:
        # Paired data in memory plus one stack of perturbed cells and its cells x genes prediction.
        mem_mb=lambda wildcards, input: 3000 + int(input.size_mb * 10),
        # A map predicts the cell type's test cells ~m(m+1)/2 + m + 2 times: 3-6 s at m = 16 (demo, CPU).
        runtime=lambda wildcards: 15 + len(explain_keys()) * REDUNDANCY["top_m"] ** 2 // 512,
    wildcard_constraints:
        method="|".join(REDUNDANCY["methods"]) or "none",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/redundancy_map.py"


rule redundancy_summary:
    input:
        tables=expand("results/redundancy/{method}/summary.tsv", method=REDUNDANCY["methods"]),
    output:
        table=report("results/redundancy/summary.tsv", caption="../report/redundancy_map.rst",
                     category="10. Redundancy maps", labels={"result": "redundant groups per target (table)"}),
        figure=report("results/redundancy/summary.png", caption="../report/redundancy_map.rst",
                      category="10. Redundancy maps", labels={"result": "redundant groups per target (figure)"}),
    log:
        "logs/redundancy/summary.log",
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/redundancy_summary.py"
