"""Genome-wide explanations (issue 17, item 2): explain.genes, the checkpoint's task list, the
gathered table and tracks, and the workflow on a finished demo run."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_workflow, snakemake
from grids.explain.genome_wide import (
    GENOME_WIDE_COLUMNS,
    TASK_COLUMNS,
    genes_mode,
    genome_wide_cell_types,
    genome_wide_shards,
    plan_genome_wide,
    write_genome_wide,
)
from grids.explain.shards import SHARD_COLUMNS
from grids.explain.tasks import ExplainTask, cell_type_stem, file_stem
from grids.workflow.config import ConfigError, check_config

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


# ---- explain.genes and explain.genes_cell_types ------------------------------------------------

def test_the_schema_and_the_config_checks_take_the_four_kinds_of_explain_genes(tmp_path, monkeypatch):
    import jsonschema

    explain = SCHEMA["properties"]["explain"]["properties"]
    assert explain["genes"]["default"] == "targets" and explain["genes_cell_types"]["default"] == []
    for good in ("targets", "all", 5, ["G1", "G2"]):
        jsonschema.validate(good, explain["genes"])
    for bad in ("some", 0, [], True, ["G1", "G1"], 2.5):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, explain["genes"])
    assert [genes_mode(g) for g in ("targets", "all", 5, ["G1"])] == ["targets", "all", "top", "list"]

    monkeypatch.chdir(tmp_path)  # the demo's paths are the simulator's, so no file needs to exist
    for genes, message in ((0, "at least 1"), ("some", "none of targets, all"), ([], "at least one gene"),
                           (["G1", "G1"], "listed twice: G1"), (True, "none of targets")):
        config = {**CONFIG, "explain": {**CONFIG["explain"], "genes": genes}}
        with pytest.raises(ConfigError, match=rf"config key explain\.genes: .*{message}"):
            check_config(config)
    config = {**CONFIG, "explain": {**CONFIG["explain"], "genes": "all", "genes_cell_types": ["B cell", "B_cell"]}}
    with pytest.raises(ConfigError, match=r"config key explain\.genes_cell_types: .*'B cell' and 'B_cell'"):
        check_config(config)
    check_config({**CONFIG, "explain": {**CONFIG["explain"], "genes": 5, "genes_cell_types": ["CT1"]}})


def _data():
    """Paired data as the task planner reads it: 3 cell types, 6 genes (one mitochondrial)."""
    genes = ["G1", "G2", "G3", "MT-CO1", "G5", "G6"]
    cell_type = np.repeat([0, 1, 2], 10)
    split = np.tile(["train"] * 7 + ["val", "test", "test"], 3)
    rna = np.zeros((30, 6), np.float32)
    rna[cell_type == 0] = [1, 5, 3, 9, 0, 2]  # type a: G2 > G3 > G6 > G1 (MT-CO1 left out)
    rna[cell_type == 1] = [4, 0, 1, 9, 6, 2]  # type b: G5 > G1 > G6 > G3
    rna[(cell_type == 1) & (split != "train"), 1] = 100  # G2 high outside training cells only
    return SimpleNamespace(genes=genes, cell_types=["a", "b", "c"], cell_type=cell_type, split=split, rna=rna)


def test_the_task_list_for_all_top_n_and_listed_genes(tmp_path):
    data = _data()
    every = plan_genome_wide("all", ["b", "a"], data, shard_size=4)
    assert list(every.columns) == TASK_COLUMNS
    assert list(zip(every["cell_type"], every["gene"])) == [(c, g) for c in ("b", "a") for g in data.genes]
    assert every["shard"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]

    top = plan_genome_wide(3, ["a", "b"], data, mito_prefix="MT-", shard_size=2)
    assert top["gene"].tolist() == ["G2", "G3", "G6", "G5", "G1", "G6"]  # by training mean, MT- left out
    assert top["shard"].tolist() == [0, 0, 1, 1, 2, 2]
    assert plan_genome_wide(9, ["a"], data, mito_prefix="MT-", shard_size=8)["gene"].tolist() == \
        ["G2", "G3", "G6", "G1", "G5"]  # N above the genes: all that are eligible

    listed = plan_genome_wide(["G6", "MT-CO1"], ["c"], data, shard_size=8)
    assert listed["gene"].tolist() == ["G6", "MT-CO1"]
    with pytest.raises(ValueError, match=r"config key explain\.genes: gene\(s\) 'G7', 'CD3E' not among the 6 "
                                         r"modelled genes of paired\.h5mu"):
        plan_genome_wide(["G1", "G7", "CD3E"], ["a"], data, shard_size=8, source="paired.h5mu")
    with pytest.raises(ValueError, match=r"explain\.genes_cell_types.*'T' is not in paired\.h5mu \(it has: a, b, c\)"):
        plan_genome_wide("all", ["a", "T"], data, shard_size=8, source="paired.h5mu")

    # Cell types: explain.genes_cell_types, or those of targets.tsv in their order.
    targets = pd.DataFrame({"cell_type": ["b", "a", "b"], "gene": ["G1", "G2", "G3"]})
    assert genome_wide_cell_types({"genes_cell_types": []}, targets) == ["b", "a"]
    assert genome_wide_cell_types({"genes_cell_types": ["c"]}, targets) == ["c"]

    # The shard jobs read their tasks back from the checkpoint's file.
    path = tmp_path / "tasks.tsv"
    top.to_csv(path, sep="\t", index=False)
    assert genome_wide_shards(path) == [[ExplainTask("a", "G2"), ExplainTask("a", "G3")],
                                        [ExplainTask("a", "G6"), ExplainTask("b", "G5")],
                                        [ExplainTask("b", "G1"), ExplainTask("b", "G6")]]


# ---- gathering the shards ----------------------------------------------------------------------

def _shard_rows(cell_type, gene, L, peaks, loss, status="ok"):
    common = {"method": "grids", "L": L, "cell_type": cell_type, "target": gene, "kind": "gene", "n_genes": 1,
              "train_loss": loss, "seconds": 1.0}
    if status != "ok":
        return [{**common, "train_loss": np.nan, "rank": 0, "peak_index": -1, "chrom": "", "start": -1, "end": -1,
                 "score": np.nan, "status": status}]
    return [{**common, "rank": rank, "peak_index": index, "chrom": chrom, "start": start, "end": start + 500,
             "score": 1.0 / rank, "status": "ok"}
            for rank, (index, chrom, start) in enumerate(peaks, start=1)]


def test_gathering_writes_one_sorted_table_and_tracks_per_cell_type(tmp_path):
    a, b, c = (0, "chr1", 10_000), (1, "chr1", 50_000), (2, "chr2", 5_000)
    tasks = pd.DataFrame({"cell_type": ["T cell", "T cell", "B"], "gene": ["ZZ", "AA", "AA"], "shard": [0, 0, 1]})
    tasks.to_csv(tmp_path / "tasks.tsv", sep="\t", index=False)
    shards = [  # shard 0: T cell's ZZ and AA (AA sorts first); shard 1: B's AA, not run at L = 2
        _shard_rows("T cell", "ZZ", 1, [b], 0.5) + _shard_rows("T cell", "ZZ", 2, [b, a], 0.25)
        + _shard_rows("T cell", "AA", 1, [a], 0.4) + _shard_rows("T cell", "AA", 2, [a, c], 0.2),
        _shard_rows("B", "AA", 1, [c], 0.3) + _shard_rows("B", "AA", 2, [], 0, status="not run: no peaks"),
    ]
    tables, metas = [], []
    for i, rows in enumerate(shards):
        tables.append(tmp_path / f"shard{i}.tsv")
        pd.DataFrame(rows, columns=SHARD_COLUMNS).to_csv(tables[-1], sep="\t", index=False)
        metas.append(tmp_path / f"shard{i}.json")
        stems = {file_stem(r["cell_type"], r["target"]): [r["target"]] for r in rows}
        metas[-1].write_text(json.dumps({"genes": stems, "curves": {}}))
    gtf = tmp_path / "genes.gtf"
    gtf.write_text('chr1\tx\tgene\t20001\t30000\t.\t+\t.\tgene_id "AA"; gene_name "AA";\n'
                   'chr1\tx\tgene\t60001\t70000\t.\t-\t.\tgene_id "ZZ"; gene_name "ZZ";\n')
    out = tmp_path / "grids"
    write_genome_wide(tables, metas, str(gtf), tasks=str(tmp_path / "tasks.tsv"), method="grids", Ls=[2, 1],
                      cell_types=["T cell", "B"], out_dir=str(out))

    table = pd.read_csv(out / "L2" / "genome_wide.tsv.gz", sep="\t")
    assert list(table.columns) == GENOME_WIDE_COLUMNS
    assert table[["cell_type", "gene", "rank", "peak"]].values.tolist() == [
        ["T cell", "AA", 1, "chr1:10000-10500"], ["T cell", "AA", 2, "chr2:5000-5500"],
        ["T cell", "ZZ", 1, "chr1:50000-50500"], ["T cell", "ZZ", 2, "chr1:10000-10500"]]  # B/AA: not run
    assert table["objective"].tolist() == [0.2, 0.2, 0.25, 0.25] and table["score"].tolist() == [1, 0.5, 1, 0.5]
    at_1 = pd.read_csv(out / "L1" / "genome_wide.tsv.gz", sep="\t")
    assert at_1[["cell_type", "gene", "peak"]].values.tolist() == [
        ["B", "AA", "chr2:5000-5500"], ["T cell", "AA", "chr1:10000-10500"], ["T cell", "ZZ", "chr1:50000-50500"]]
    raw = (out / "L2" / "genome_wide.tsv.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # gzip, no time stamp: reruns give equal bytes
    assert gzip.decompress(raw).decode().startswith("cell_type\tgene\trank\tpeak\tscore\tobjective\n")

    # Tracks per cell type (file names as file_stem makes them), each peak drawn to its own gene's TSS.
    bedpe = (out / "L2" / "genome_wide" / "T_cell.bedpe").read_text().splitlines()
    assert bedpe[0] == "# grids L2 T cell genome-wide" and bedpe[1].startswith("#chrom1\tstart1")
    arcs = [line.split("\t") for line in bedpe[2:]]
    # A gene's peak on another chromosome is drawn to its TSS too, as in the per-target tracks.
    assert [(r[0], r[1], r[3], r[4], r[6], r[7]) for r in arcs] == [
        ("chr1", "10000", "chr1", "20000", "AA:rank1", "1000"), ("chr2", "5000", "chr1", "20000", "AA:rank2", "100"),
        ("chr1", "50000", "chr1", "69999", "ZZ:rank1", "1000"), ("chr1", "10000", "chr1", "69999", "ZZ:rank2", "100")]
    interact = (out / "L2" / "genome_wide" / "T_cell.interact.bed").read_text().splitlines()
    assert interact[0].startswith('track type=interact name="grids_L2_T_cell_genome_wide"')
    assert [line.split("\t")[3] for line in interact[1:]] == ["AA:rank1", "AA:rank2", "ZZ:rank1", "ZZ:rank2"]
    assert all(len(line.split("\t")) == 18 for line in interact[1:])
    assert len((out / "L2" / "genome_wide" / "B.bedpe").read_text().splitlines()) == 2  # header only
    assert (out / "L1" / "genome_wide" / "B.bedpe").read_text().splitlines()[2].startswith("chr2\t5000\t5500\tchr1")
    assert (out / "L1" / "genome_wide.png").stat().st_size > 10_000

    # A task of the list that no shard ran is an error, not a missing gene.
    pd.DataFrame({"cell_type": ["T cell"] * 3, "gene": ["ZZ", "AA", "NEW"], "shard": [0, 0, 0]}).to_csv(
        tmp_path / "tasks.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"lack 1 of the 3 tasks .* T_cell__NEW"):
        write_genome_wide(tables, metas, str(gtf), tasks=str(tmp_path / "tasks.tsv"), method="grids", Ls=[1],
                          cell_types=["T cell", "B"], out_dir=str(out))


# ---- the workflow on a finished demo run -------------------------------------------------------

def _copied_run(demo_run: Path, root: Path) -> Path:
    """The demo run's outputs, logs and Snakemake metadata beside this checkout's workflow; the
    code is dated before the run's first output, as in the checkout that made the run
    (GRIDS_TEST_DEMO_RUN must be a run of the current code), so Snakemake's params, input and
    software triggers, not the scripts' copy time, decide what reruns."""
    if not (demo_run / ".snakemake" / "metadata").is_dir() or not (demo_run / "results").is_dir():
        pytest.skip(f"{demo_run} holds no finished run with Snakemake metadata")
    root.mkdir()
    copy_workflow(root)
    for item in ("results", "logs", ".snakemake/metadata"):
        if (demo_run / item).is_dir():
            shutil.copytree(demo_run / item, root / item, symlinks=True)
    oldest = min(path.stat().st_mtime for path in (root / "results").rglob("*") if path.is_file())
    for item in ("Snakefile", "workflow", "src", "config", "envs", "resources"):
        for path in [root / item, *(root / item).rglob("*")]:
            os.utime(path, (oldest - 60, oldest - 60), follow_symlinks=False)
    return root


def _snakemake_ok(root: Path, *args: str, timeout: int = 1200) -> str:
    result = snakemake(root, *args, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


@pytest.mark.slow
def test_genome_wide_outputs_on_the_demo_match_the_per_target_selections(demo_run, tmp_path):
    from grids.explain.tasks import target_genes
    from grids.surrogate.data import load_paired

    root = _copied_run(demo_run, tmp_path / "run")
    # The feature adds nothing to a default run: no job of the finished run reruns.
    assert "Nothing to be done" in _snakemake_ok(root, "-n")

    # One cell type of targets.tsv whose 5 most expressed genes include one of its targets.
    targets = pd.read_csv(root / "config" / "targets.tsv", sep="\t", dtype=str)
    data = load_paired(str(root / "results" / "multiome" / "paired.h5mu"))
    chosen = None
    for cell_type in dict.fromkeys(targets["cell_type"]):
        rows = np.flatnonzero((data.cell_type == data.cell_types.index(cell_type)) & (data.split == "train"))
        top = [data.genes[g] for g in target_genes(ExplainTask(cell_type, "top5", "set"), data.genes,
                                                   data.rna[rows].mean(0), top_n=5, mito_prefix="MT-")]
        shared = [g for g in targets.loc[targets["cell_type"] == cell_type, "gene"] if g in top]
        if shared:
            chosen = cell_type
            break
    assert chosen, "no cell type's 5 most expressed genes include one of its targets"
    methods, Ls = ["grids", "correlation"], CONFIG["explain"]["L"]
    # shard_size 3: the 5 genes run in two shards, so one of them is batched with other genes.
    overlay = {"explain": {"genes": 5, "genes_cell_types": [chosen], "methods": methods, "shard_size": 3}}
    (root / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    stem = cell_type_stem(chosen)
    wanted = [f"results/explain/{m}/L{L}/{name}" for m in methods for L in Ls
              for name in ("genome_wide.tsv.gz", "genome_wide.png", f"genome_wide/{stem}.bedpe",
                           f"genome_wide/{stem}.interact.bed")]
    started = time.perf_counter()
    _snakemake_ok(root, *wanted, "--cores", "2", "--configfile", "config/config.yaml", "overlay.yaml")
    seconds = time.perf_counter() - started
    print(f"genome-wide run: {seconds:.0f} s for 5 genes of {chosen} x {len(methods)} methods")

    tasks = pd.read_csv(root / "results" / "explain" / "genome_wide" / "tasks.tsv", sep="\t")
    assert list(tasks.columns) == TASK_COLUMNS and tasks["gene"].tolist() == top
    assert tasks["shard"].tolist() == [0, 0, 0, 1, 1]
    for method in methods:
        assert len(list((root / "results" / "explain" / method / "genome_wide").glob("shard*.tsv"))) == 2
        for L in Ls:
            base = root / "results" / "explain" / method / f"L{L}"
            table = pd.read_csv(base / "genome_wide.tsv.gz", sep="\t")
            assert list(table.columns) == GENOME_WIDE_COLUMNS
            assert table.equals(table.sort_values(["cell_type", "gene", "rank"]).reset_index(drop=True))
            assert set(table["gene"]) == set(top) and set(table["cell_type"]) == {chosen}
            assert table.groupby("gene").size().le(L).all()
            assert len((base / "genome_wide" / f"{stem}.bedpe").read_text().splitlines()) > 2
            assert len((base / "genome_wide" / f"{stem}.interact.bed").read_text().splitlines()) > 1
            # A target of targets.tsv gets the selection of its per-target file (same method, L,
            # seed and settings; its batch of genes differs).
            for gene in shared:
                alone = pd.read_csv(base / f"{file_stem(chosen, gene)}.tsv", sep="\t")
                mine = table[table["gene"] == gene]
                peaks = [f"{c}:{s}-{e}" for c, s, e in zip(alone["chrom"], alone["start"], alone["end"])]
                assert mine["peak"].tolist() == peaks, (method, L, gene)
                assert np.allclose(mine["score"], alone["score"], rtol=1e-6), (method, L, gene)

    # Up to date afterwards, and the default run still has nothing to do.
    assert "Nothing to be done" in _snakemake_ok(root, *wanted, "-n", "--configfile", "config/config.yaml",
                                                 "overlay.yaml")
    assert "Nothing to be done" in _snakemake_ok(root, "-n")
