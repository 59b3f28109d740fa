# RNA stage (Pegasus QC, HVGs, labels) and pairing with ATAC into the train/val/test data set.


rule rna_qc_and_labels:
    input:
        rna=[rna_file(s) for s in samples["sample"]],
        labels=[samples.loc[s, "cell_types"] for s in samples["sample"] if samples.loc[s, "cell_types"]]
        if config["rna"]["labels"] == "given"
        else [],
        markers=[config["rna"]["markers"]]
        if config["rna"]["labels"] == "infer" and config["rna"]["markers"].endswith(".json")
        else [],
        targets=config["targets"],
    output:
        h5ad="results/rna/rna.h5ad",
        qc="results/rna/qc.tsv",
        figure=report("results/rna/qc.png", caption="../report/rna_qc.rst", category="1. QC"),
        labels="results/rna/labels.tsv",
    params:
        rna_files=lambda wildcards: {s: rna_file(s) for s in samples["sample"]},
        # Label tables are read only with labels: given.
        label_tables=lambda wildcards: {s: samples.loc[s, "cell_types"] for s in samples["sample"]}
        if config["rna"]["labels"] == "given"
        else {},
        settings=rna_settings(),
        mito_prefix=config["genome"]["mito_prefix"],
    log:
        "logs/rna/qc_and_labels.log",
    threads: 1
    resources:
        mem_mb=lambda wildcards, input: 3000 + int(input.size_mb * 20),
        runtime=lambda wildcards, input: 15 + int(input.size_mb / 10),
    conda:
        "../../envs/rna.yaml"
    script:
        "../scripts/rna_qc_and_labels.py"


rule multiome_pair:
    input:
        rna="results/rna/rna.h5ad",
        rna_qc="results/rna/qc.tsv",
        atac="results/atac/atac.h5ad",
    output:
        h5mu="results/multiome/paired.h5mu",
        report="results/multiome/pairing.tsv",
        umap=report("results/multiome/umap.png", caption="../report/umap.rst", category="2. Cells"),
    params:
        # The ATAC-side QC of pairing (applied whatever atac.cells), and the rare-type cut-off.
        min_fragments=config["atac"]["min_fragments"],
        min_tss_enrichment=config["atac"]["min_tss_enrichment"],
        min_cells_per_type=config["rna"]["min_cells_per_type"],
        split=config_keys("split", "train", "val", "test", "seed"),
    log:
        "logs/multiome/pair.log",
    threads: 1
    resources:
        mem_mb=lambda wildcards, input: 2000 + int(input.size_mb * 6),
        runtime=20,
    conda:
        "../../envs/rna.yaml"
    script:
        "../scripts/multiome_pair.py"
