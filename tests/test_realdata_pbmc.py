"""The ATAC stage on real 10x Multiome PBMC data (../shared/data/pbmc_multiome)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import require_shared_data
from test_workflow import copy_workflow, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def _stand_in_gtf(rna_var: pd.DataFrame, path) -> None:
    """No hg38 annotation ships here: a GTF of the 45 genes from the h5mu's 10x intervals.

    Strand is unknown in that table; '+' makes the TSS the interval start. It only feeds the
    TSS-enrichment QC, which this test does not judge.
    """
    rows = []
    for gene, interval in rna_var["interval"].items():
        chrom, span = interval.split(":")
        start, end = (int(x) for x in span.split("-"))
        rows.append(f'{chrom}\tstandin\tgene\t{start + 1}\t{end}\t.\t+\t.\tgene_id "{gene}"; gene_name "{gene}";')
    path.write_text("\n".join(rows) + "\n")


def use_real_data(root, sample_sheet: str) -> None:
    """Point a workflow copy at real data: its sample sheet, hg38 sizes, genes.gtf in ``root``."""
    (root / "samples.tsv").write_text(sample_sheet)
    (root / "targets.tsv").write_text("cell_type\tgene\nmonocyte\tCD14\n")
    config = {
        "samples": "samples.tsv", "targets": "targets.tsv",
        "genome": {"name": "hg38", "gtf": "genes.gtf", "chrom_sizes": "resources/hg38.chrom.sizes"},
        "simulate": {"samples": []}, "hic": {"files": {}},
        # 45 marker genes and ~26 fragments per cell in this subset: thresholds to match.
        "rna": {"labels": "infer", "markers": "human_immune", "min_genes": 1, "min_umis": 1, "n_top_genes": 45,
                "min_cells_per_type": 5},
        "atac": {"min_fragments": 1, "min_tss_enrichment": 0},
    }
    # Replace the demo config entirely (--configfile would merge into it key by key).
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def pbmc_run(tmp_path_factory):
    import mudata as md

    h5mu = require_shared_data("pbmc_multiome", "pbmc_multiome.h5mu")
    fragments = require_shared_data("pbmc_multiome", "fragments.tsv.gz")
    root = copy_workflow(tmp_path_factory.mktemp("pbmc"))
    data = md.read_h5mu(h5mu)
    _stand_in_gtf(data["rna"].var, root / "genes.gtf")
    use_real_data(root, f"sample\tfragments\trna\npbmc\t{fragments}\t{h5mu}\n")
    result = snakemake(root, "--cores", "2", "results/multiome/paired.h5mu")
    assert result.returncode == 0, result.stderr[-6000:]
    return root, data


def test_pbmc_peaks_cover_cell_ranger_arc_peaks(pbmc_run):
    """Acceptance (issue 4): >= 70% of the ARC peaks in the h5mu overlap one of our MACS peaks."""
    import pyranges as pr

    root, data = pbmc_run
    ours = pd.read_csv(root / "results" / "atac" / "peaks.bed", sep="\t", header=None,
                       names=["Chromosome", "Start", "End", "Name"])
    arc = data["atac"].var["interval"].str.extract(r"(?P<Chromosome>[^:]+):(?P<Start>\d+)-(?P<End>\d+)")
    arc = arc.astype({"Start": int, "End": int}).assign(id=data["atac"].var_names)
    covered = pr.PyRanges(arc).overlap(pr.PyRanges(ours)).df["id"].nunique()
    assert covered / len(arc) >= 0.7, (covered, len(arc))
    assert "callpeak" in (root / "logs" / "atac" / "pbmc.all.macs.log").read_text()


def test_pbmc_matrix_has_the_rna_cells_in_order(pbmc_run):
    import anndata as ad

    root, data = pbmc_run
    adata = ad.read_h5ad(root / "results" / "atac" / "atac.h5ad")
    assert adata.n_obs == 1000
    assert adata.obs_names.tolist() == [f"pbmc#{b}" for b in data["rna"].obs_names]
    assert adata.X.dtype == np.uint8 and adata.X.nnz > 0
    assert adata.obs["frip"].median() > 0.2


def test_pbmc_precomputed_arc_matrix_skips_peak_calling(tmp_path):
    """A sample given as a peak matrix (the h5mu's ATAC modality) uses its peaks as they are."""
    import anndata as ad
    import mudata as md

    h5mu = require_shared_data("pbmc_multiome", "pbmc_multiome.h5mu")
    root = copy_workflow(tmp_path)
    (root / "genes.gtf").write_text('chr1\tx\tgene\t100\t200\t.\t+\t.\tgene_id "G"; gene_name "G";\n')
    use_real_data(root, f"sample\tatac_matrix\trna\npbmc\t{h5mu}\t{h5mu}\n")
    result = snakemake(root, "--cores", "2", "results/atac/atac.h5ad", "results/atac/qc.png")
    assert result.returncode == 0, result.stderr[-6000:]
    assert "atac_call_peaks" not in result.stdout + result.stderr
    data = md.read_h5mu(h5mu)
    adata = ad.read_h5ad(root / "results" / "atac" / "atac.h5ad")
    assert adata.shape == (1000, data["atac"].n_vars)
    assert adata.obs_names.tolist() == [f"pbmc#{b}" for b in data["rna"].obs_names]
    expected = (data["atac"].X > 0).sum()
    assert adata.X.dtype == np.uint8 and adata.X.nnz == expected
    peaks = pd.read_csv(root / "results" / "atac" / "peaks.bed", sep="\t", header=None)
    assert len(peaks) == data["atac"].n_vars


def test_pbmc_paired_file_has_the_main_immune_types(pbmc_run):
    """Acceptance (issue 5): Pegasus QC on the 45 genes, human_immune labels, and monocytes,
    B cells and T/NK cells among the paired cells, which passed both QCs."""
    import mudata as md

    root, _ = pbmc_run
    paired = md.read_h5mu(root / "results" / "multiome" / "paired.h5mu")
    types = set(paired.obs["cell_type"])
    assert any("Monocyte" in t for t in types), types
    assert any("B cell" in t for t in types), types
    assert any("T cell" in t or "NK" in t or "Natural Killer" in t for t in types), types
    qc = pd.read_csv(root / "results" / "rna" / "qc.tsv", sep="\t").set_index("cell")
    assert qc.loc[paired.obs_names, "passed_qc"].all()
    assert (paired["atac"].obs["n_fragments"] >= 1).all()
    assert "pegasus" in (root / "logs" / "rna" / "qc_and_labels.log").read_text().lower()
