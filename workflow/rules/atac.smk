# ATAC stage: fragments -> QC and cells -> MACS pseudobulk peaks -> consensus -> binary matrix.
# Samples given as precomputed peak matrices (atac_matrix) skip QC and peak calling.


if ATAC_FROM_FRAGMENTS:

    rule atac_bam_to_fragments:
        input:
            bam=lambda wildcards: samples.loc[wildcards.sample, "bam"],
            chrom_sizes=config["genome"]["chrom_sizes"],
        output:
            fragments="results/atac/{sample}/fragments.tsv.gz",
            index="results/atac/{sample}/fragments.tsv.gz.tbi",
        log:
            "logs/atac/{sample}.bam_to_fragments.log",
        threads: 1
        resources:
            mem_mb=4000,
            runtime=120,
        conda:
            "../../envs/atac.yaml"
        script:
            "../scripts/atac_bam_to_fragments.py"


    rule atac_barcode_qc:
        input:
            fragments=lambda wildcards: fragments_file(wildcards.sample),
            gtf=config["genome"]["gtf"],
            chrom_sizes=config["genome"]["chrom_sizes"],
            rna=lambda wildcards: rna_file(wildcards.sample),
        output:
            table="results/atac/{sample}/barcodes.tsv.gz",
            profiles="results/atac/{sample}/qc_profiles.npz",
        params:
            atac=atac_cell_calling() | config_keys("atac", "skip_unknown_chromosomes"),
        log:
            "logs/atac/{sample}.barcode_qc.log",
        threads: 1
        resources:
            mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 2),
            runtime=lambda wildcards, input: 10 + int(input.size_mb / 20),
            # Performance only: fragment lines parsed at a time bound memory, not the result.
            fragment_chunk_size=config["atac"]["chunk_size"],
        conda:
            "../../envs/atac.yaml"
        script:
            "../scripts/atac_barcode_qc.py"


    rule atac_pseudobulk_insertions:
        input:
            fragments=lambda wildcards: fragments_file(wildcards.sample),
            chrom_sizes=config["genome"]["chrom_sizes"],
            barcodes="results/atac/{sample}/barcodes.tsv.gz",
        output:
            insertions=temp(directory("results/atac/{sample}/pseudobulk")),
        params:
            groups=lambda wildcards: pseudobulks(wildcards.sample),
            labels=lambda wildcards: samples.loc[wildcards.sample, "cell_types"],
            atac=config_keys("atac", "skip_unknown_chromosomes"),
        log:
            "logs/atac/{sample}.insertions.log",
        threads: 1
        resources:
            mem_mb=lambda wildcards, input: 2000 + int(input.size_mb),
            runtime=lambda wildcards, input: 10 + int(input.size_mb / 20),
            # Performance only: fragment lines parsed at a time bound memory, not the result.
            fragment_chunk_size=config["atac"]["chunk_size"],
        conda:
            "../../envs/atac.yaml"
        script:
            "../scripts/atac_pseudobulk_insertions.py"


    rule atac_call_peaks:
        input:
            insertions="results/atac/{sample}/pseudobulk",
            chrom_sizes=config["genome"]["chrom_sizes"],
        output:
            narrowpeak="results/atac/{sample}/{sample}.{group}_peaks.narrowPeak",
        params:
            atac=config_keys("atac", "peak_caller", "genome_size", "macs_qvalue", "macs_shift", "macs_extsize",
                             "macs_nolambda"),
        log:
            "logs/atac/{sample}.{group}.macs.log",
        threads: 1
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            "../../envs/atac.yaml"
        script:
            "../scripts/atac_call_peaks.py"


    rule atac_consensus_peaks:
        input:
            narrowpeaks=narrowpeak_files(),
            chrom_sizes=config["genome"]["chrom_sizes"],
            # An input, not a param: an edited blacklist reruns the consensus, a missing one is
            # named before anything runs. Empty: no blacklist.
            blacklist=config["genome"]["blacklist"] or [],
        output:
            peaks="results/atac/peaks.bed",
        params:
            exclude=config["atac"]["exclude_chromosomes"],
        log:
            "logs/atac/consensus_peaks.log",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/atac.yaml"
        script:
            "../scripts/atac_consensus_peaks.py"


    rule atac_sample_matrix:
        input:
            fragments=lambda wildcards: fragments_file(wildcards.sample),
            chrom_sizes=config["genome"]["chrom_sizes"],
            peaks="results/atac/peaks.bed",
            barcodes="results/atac/{sample}/barcodes.tsv.gz",
            rna=lambda wildcards: rna_file(wildcards.sample),
        output:
            h5ad="results/atac/{sample}/matrix.h5ad",
        params:
            atac=config_keys("atac", "cells", "skip_unknown_chromosomes"),
        log:
            "logs/atac/{sample}.matrix.log",
        threads: 1
        resources:
            mem_mb=lambda wildcards, input: 3000 + int(input.size_mb * 3),
            runtime=lambda wildcards, input: 10 + int(input.size_mb / 20),
            # Performance only: fragment lines parsed at a time bound memory, not the result.
            fragment_chunk_size=config["atac"]["chunk_size"],
        conda:
            "../../envs/atac.yaml"
        script:
            "../scripts/atac_sample_matrix.py"

else:

    rule atac_import_matrix:
        input:
            matrix=lambda wildcards: samples.loc[wildcards.sample, "atac_matrix"],
            chrom_sizes=config["genome"]["chrom_sizes"],
            rna=lambda wildcards: rna_file(wildcards.sample),
        output:
            h5ad="results/atac/{sample}/matrix.h5ad",
        params:
            atac=config_keys("atac", "cells", "exclude_chromosomes"),
        log:
            "logs/atac/{sample}.import_matrix.log",
        threads: 1
        resources:
            mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 10),
            runtime=20,
        conda:
            "../../envs/atac.yaml"
        script:
            "../scripts/atac_import_matrix.py"

    rule atac_matrix_peaks:
        input:
            matrices=expand("results/atac/{sample}/matrix.h5ad", sample=samples["sample"]),
        output:
            peaks="results/atac/peaks.bed",
        log:
            "logs/atac/matrix_peaks.log",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/atac.yaml"
        script:
            "../scripts/atac_matrix_peaks.py"


rule atac_merge:
    input:
        peaks="results/atac/peaks.bed",
        matrices=expand("results/atac/{sample}/matrix.h5ad", sample=samples["sample"]),
        barcodes=expand("results/atac/{sample}/barcodes.tsv.gz", sample=samples["sample"])
        if ATAC_FROM_FRAGMENTS
        else [],
        profiles=expand("results/atac/{sample}/qc_profiles.npz", sample=samples["sample"])
        if ATAC_FROM_FRAGMENTS
        else [],
    output:
        h5ad="results/atac/atac.h5ad",
        qc="results/atac/qc.tsv",
        figure=report("results/atac/qc.png", caption="../report/atac_qc.rst", category="1. QC"),
    params:
        samples=list(samples["sample"]),
        # The QC figure draws the thresholds only where they called the cells.
        atac=atac_cell_calling(),
    log:
        "logs/atac/merge.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/atac.yaml"
    script:
        "../scripts/atac_merge.py"
