"""The explain shard runner on a tiny trained surrogate: outputs, tracks and bad input (issue 7)."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from grids.explain.tasks import ExplainTask, explain_tasks, file_stem, shard_tasks
from grids.multiome import write_paired
from grids.surrogate import TrainSettings, save_surrogate, train_surrogate
from grids.surrogate.data import PairedData, cis_links
from grids.workflow.stages.explain import SELECTION_COLUMNS, run_explain_shard, write_target_files

N_PEAKS, N_GENES = 60, 5


def _toy(tmp_path):
    """A 2-chromosome toy: gene g is driven by peaks 10g..10g+3 near its TSS at 10g * 1000."""
    rng = np.random.default_rng(0)
    n = 160
    cell_type = rng.integers(0, 2, n)
    X = (rng.random((n, N_PEAKS)) < 0.3).astype(np.float32)
    X[cell_type == 1, 40:] = 0  # type "b" has the last peaks closed
    drive = np.stack([X[:, 10 * g : 10 * g + 4].sum(1) for g in range(N_GENES)], axis=1)
    rna = np.log1p(2 * drive + cell_type[:, None] + rng.random((n, N_GENES))).astype(np.float32)
    chrom = np.where(np.arange(N_PEAKS) < 30, "chr1", "chr2")
    start = (np.arange(N_PEAKS) % 30) * 10_000
    peaks = pd.DataFrame({"chrom": chrom, "start": start, "end": start + 500},
                         index=[f"{c}:{s}-{s + 500}" for c, s in zip(chrom, start)])
    genes = [f"G{g}" for g in range(N_GENES)]
    split = np.array((["train"] * 7 + ["val"] + ["test"] * 2) * (n // 10))
    cells = [f"s#c{i}" for i in range(n)]
    types = np.array(["a", "b"])[cell_type]
    data = PairedData(sp.csr_matrix(X), rna, cell_type, ["a", "b"], split, peaks, genes, cells, None)
    gtf = tmp_path / "genes.gtf"
    with open(gtf, "w") as handle:
        for g in range(N_GENES):
            chrom_g, pos = ("chr1", (10 * g % 30) * 10_000 + 1000) if g < 3 else ("chr2", (10 * g % 30) * 10_000 + 1000)
            handle.write(f'{chrom_g}\tx\tgene\t{pos + 1}\t{pos + 2000}\t.\t+\t.\tgene_id "G{g}"; gene_name "G{g}";\n')
    from grids.genome import read_tss

    links = cis_links(peaks, genes, read_tss(gtf, {"chr1": 0, "chr2": 0}), window=50_000)
    model, info = train_surrogate(data, TrainSettings(max_epochs=3, batch_size=32, device="cpu"),
                                  checkpoint=tmp_path / "c.pt", cis=links, progress=False)
    save_surrogate(model, data, info, path=tmp_path / "model.pt")
    rna_ad = ad.AnnData(sp.csr_matrix(rna), obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=genes))
    atac_ad = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame(index=cells), var=peaks[["chrom", "start", "end"]])
    write_paired(rna_ad, atac_ad, pd.Series(types, index=cells), split=pd.Series(split, index=cells),
                 path=str(tmp_path / "paired.h5mu"))
    return tmp_path / "model.pt", tmp_path / "paired.h5mu", gtf


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return _toy(tmp_path_factory.mktemp("explain"))


def _run(toy, tmp_path, tasks, method="grids", resume=None, **settings):
    model, paired, gtf = toy
    options = {"L": [2, 4], "steps": 20, "k": 8, **settings}
    return run_explain_shard(model=str(model), paired=str(paired), gtf=str(gtf), tasks=tasks, method=method,
                             settings=options, mito_prefix="MT-", out_table=str(tmp_path / "shard.tsv"),
                             out_meta=str(tmp_path / "shard.json"), progress=False, resume=resume)


def test_an_interrupted_shard_resumes_at_its_first_unfinished_task(toy, tmp_path, monkeypatch, caplog):
    """GRIDS runs a shard's targets one cell type at a time (all of a type's targets together),
    so a record holds whole cell types: Ctrl-C in the second cell type keeps the first's."""
    import grids.workflow.stages.explain as stage

    tasks = [ExplainTask("a", "G1"), ExplainTask("b", "G2"), ExplainTask("a", "top2", "set")]
    straight = _run(toy, tmp_path / "straight", tasks)
    record = tmp_path / "run" / "shard.partial.json"
    real_target_genes = stage.target_genes
    calls: list[str] = []

    def interrupted_in_the_second_cell_type(task, *args, **kwargs):
        calls.append(task.stem)
        if task.cell_type == "b":
            raise KeyboardInterrupt  # Ctrl-C while cell type b runs
        return real_target_genes(task, *args, **kwargs)

    monkeypatch.setattr(stage, "target_genes", interrupted_in_the_second_cell_type)
    with pytest.raises(KeyboardInterrupt):
        _run(toy, tmp_path / "run", tasks, resume=str(record))
    assert calls == ["a__G1", "a__top2", "b__G2"], "a cell type's targets did not run together"
    assert not (tmp_path / "run" / "shard.tsv").exists() and not (tmp_path / "run" / "shard.json").exists()
    assert list(json.loads(record.read_text())["tasks"]) == ["a__G1", "a__top2"]

    calls.clear()
    monkeypatch.setattr(stage, "target_genes",
                        lambda task, *a, **k: calls.append(task.stem) or real_target_genes(task, *a, **k))
    with caplog.at_level("INFO", logger="grids.workflow.stages.explain"):
        resumed = _run(toy, tmp_path / "run", tasks, resume=str(record))
    assert calls == ["b__G2"], "a finished task was computed again"
    assert "2 task(s) already done (a__G1, a__top2)" in caplog.text
    assert not record.exists(), "the record outlived the finished shard"
    pd.testing.assert_frame_equal(resumed.drop(columns="seconds"), straight.drop(columns="seconds"))
    assert (json.loads((tmp_path / "run" / "shard.json").read_text())
            == json.loads((tmp_path / "straight" / "shard.json").read_text()))

    # A record from other settings is not trusted: every task runs again.
    record.write_text(json.dumps({"fingerprint": "other", "tasks": {"a__G1": {}}}))
    calls.clear()
    _run(toy, tmp_path / "run", tasks, resume=str(record))
    assert calls == ["a__G1", "a__top2", "b__G2"]


@pytest.mark.parametrize("method", ["grids", "random", "saliency", "smoothgrad", "fimap", "correlation", "sage",
                                    "lime"])
def test_every_method_writes_ranked_selections_and_tracks(toy, tmp_path, method):
    tasks = [ExplainTask("a", "G1"), ExplainTask("b", "top2", "set")]
    table = _run(toy, tmp_path, tasks, method, window=50_000)
    out = tmp_path / method
    keys = [f"L{L}/{t.stem}" for L in (2, 4) for t in tasks]
    write_target_files([str(tmp_path / "shard.tsv")], [str(tmp_path / "shard.json")], str(toy[2]), out_dir=str(out),
                       method=method, expected=keys)
    for key in keys:
        selection = pd.read_csv(out / f"{key}.tsv", sep="\t")
        assert list(selection.columns) == SELECTION_COLUMNS
        ok = selection[selection["status"] == "ok"]
        if len(ok):
            assert ok["rank"].tolist() == list(range(1, len(ok) + 1))
            assert ok["peak_index"].is_unique and (ok["end"] > ok["start"]).all()
        else:  # a method that cannot run says why
            assert selection["status"].iloc[0].startswith("not run: ")
        bedpe = pd.read_csv(out / f"{key}.bedpe", sep="\t", comment="#", header=None) if len(ok) else None
        if bedpe is not None:
            assert bedpe.shape[1] == 10 and (bedpe[5] - bedpe[4] == 1).all()
        interact = (out / f"{key}.interact.bed").read_text().splitlines()
        assert interact[0].startswith("track type=interact")
        assert all(len(line.split("\t")) == 18 for line in interact[1:])
    if method == "grids":
        assert (out / "L2" / f"{file_stem('a', 'G1')}.curve.png").stat().st_size > 5_000
        meta = json.loads((tmp_path / "shard.json").read_text())
        curve = meta["curves"]["L4/a__G1"]
        assert meta["genes"]["b__top2"] and 0 < len(curve["validation"]) == len(curve["step"]) <= 20
        assert all(b <= a + 1e-12 for a, b in zip(curve["train"], curve["train"][1:]))  # never worse
    assert set(table["method"]) == {method}


def test_grids_is_at_least_as_good_as_saliency_and_random(toy, tmp_path):
    tasks = [ExplainTask("a", "G0"), ExplainTask("a", "G1")]
    losses = {m: _run(toy, tmp_path, tasks, m).groupby(["target", "L"])["train_loss"].first()
              for m in ("grids", "saliency", "random")}
    assert (losses["grids"] <= losses["saliency"] + 1e-9).all()
    assert (losses["grids"] < losses["random"]).all()


def test_a_method_added_to_the_registry_runs_its_shard(toy, tmp_path, monkeypatch):
    """A new method is one registry entry plus its function: here 'widest', the L open peaks open
    in most training cells. Its shard runs and reports one ranking's first L peaks at each L."""
    from grids.explain import methods
    from grids.explain.search import Selection, open_candidates
    from grids.explain.tasks import shard_settings

    def widest(given, L):
        candidates = open_candidates(given.train)
        counts = np.asarray(given.train.X[:, candidates].sum(0)).ravel()
        peaks = candidates[np.argsort(-counts, kind="stable")[:L]]
        return Selection(peaks, np.sort(counts)[::-1][:L].astype(float), given.objective.loss(given.train, peaks))

    entry = methods.ExplainMethod("widest", widest, "ranking", gpu=False, reads=(), summary="most often open")
    monkeypatch.setitem(methods.METHODS, "widest", entry)
    table = _run(toy, tmp_path, [ExplainTask("a", "G1")], "widest")
    ok = table[table["status"] == "ok"]
    assert set(table["method"]) == {"widest"} and len(ok) == 2 + 4
    assert ok[ok["L"] == 4]["peak_index"].tolist()[:2] == ok[ok["L"] == 2]["peak_index"].tolist()  # one ranking
    # Its shards are given the shared settings, not GRIDS's: a changed explain.k reruns none of them.
    assert shard_settings("widest", {"L": [2], "k": 8}, [ExplainTask("a", "G1")]) == {"L": [2]}


def test_bad_input_errors(toy, tmp_path):
    with pytest.raises(ValueError, match=r"target gene 'G11' .* not in the surrogate's 5 genes; close matches: G"):
        _run(toy, tmp_path, [ExplainTask("a", "G11")])
    with pytest.raises(ValueError, match=r"L = 100 is larger than the \d+ peaks open in the training cells of 'b'"):
        _run(toy, tmp_path, [ExplainTask("b", "G1")], L=[100])
    with pytest.raises(ValueError, match=r"cell type 'c' is not in .* \(it has: a, b\)"):
        _run(toy, tmp_path, [ExplainTask("c", "G1")])
    assert not (tmp_path / "shard.tsv").exists()  # nothing half-written


def test_tasks_and_shards():
    targets = pd.DataFrame({"cell_type": ["a", "a", "b", "a"], "gene": ["G1", "G2", "G1", "G1"]})
    tasks = explain_tasks(targets, ["a", "b"], 100)
    assert [t.stem for t in tasks] == ["a__G1", "a__G2", "b__G1", "a__top100", "b__top100"]
    assert [len(s) for s in shard_tasks(tasks, 2)] == [2, 2, 1]
    assert file_stem("CD14+ Mono/x", "G1") == "CD14+_Mono_x__G1"
