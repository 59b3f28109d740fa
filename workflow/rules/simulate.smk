# The ground-truth multiome simulator (demo data). DESIGN §7.


rule simulate_sample:
    output:
        **{k: v for k, v in simulated_files("{sample}").items() if k != "hic"},
    params:
        simulation=lambda wildcards: simulation_params(),
    log:
        "logs/simulate/{sample}.log",
    threads: 1
    resources:
        mem_mb=lambda wildcards: 8000 if simulation_params().n_genes > 1000 else 2000,
        runtime=lambda wildcards: 120 if simulation_params().n_genes > 1000 else 10,
    conda:
        "../../envs/simulate.yaml"
    script:
        "../scripts/simulate_sample.py"


rule simulate_hic:
    output:
        cool="results/simulated/{sample}/hic/{cell_type}.cool",
    params:
        simulation=lambda wildcards: simulation_params(),
    log:
        "logs/simulate/{sample}.hic.{cell_type}.log",
    wildcard_constraints:
        cell_type="|".join(simulated_cell_types()) or "NONE",
    threads: 1
    resources:
        mem_mb=lambda wildcards: 6000 if simulation_params().n_genes > 1000 else 1000,
        runtime=lambda wildcards: 60 if simulation_params().n_genes > 1000 else 5,
    conda:
        "../../envs/simulate.yaml"
    script:
        "../scripts/simulate_hic.py"
