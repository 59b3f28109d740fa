# The ground-truth multiome simulator (demo data). docs/architecture.md §7.


rule simulate_sample:
    output:
        **{k: v for k, v in simulated_files("{sample}").items() if k != "hic"},
    params:
        simulation=simulation_settings,
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


# One job per sample writes every cell type's map: the regulatory model is built once, and a
# job per map cost more in start-up than in writing it.
rule simulate_hic:
    output:
        cools=simulated_files("{sample}")["hic"],
    params:
        simulation=simulation_settings,
        cell_types=simulated_cell_types(),
    log:
        "logs/simulate/{sample}.hic.log",
    threads: 1
    resources:
        mem_mb=lambda wildcards: 6000 if simulation_params().n_genes > 1000 else 1000,
        runtime=lambda wildcards: 60 * len(simulated_cell_types()) if simulation_params().n_genes > 1000 else 10,
    conda:
        "../../envs/simulate.yaml"
    script:
        "../scripts/simulate_hic.py"
