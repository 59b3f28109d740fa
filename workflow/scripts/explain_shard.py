"""Snakemake adapter: one method over one shard of explanation targets."""

from grids.explain.stage import run_explain_shard
from grids.gpus import claimed_gpu
from grids.workflow import logged

# One device per GPU job when several GPU jobs run at once (--resources gpu=N).
with logged(snakemake.log[0]), claimed_gpu(snakemake.resources.gpu > 0):  # noqa: F821 (injected by Snakemake)
    run_explain_shard(
        model=snakemake.input.model,  # noqa: F821
        paired=snakemake.input.paired,  # noqa: F821
        gtf=snakemake.input.gtf,  # noqa: F821
        tasks=snakemake.params.tasks,  # noqa: F821
        method=snakemake.wildcards.method,  # noqa: F821
        settings=snakemake.params.settings,  # noqa: F821
        mito_prefix=snakemake.params.mito_prefix,  # noqa: F821
        device=snakemake.params.device,  # noqa: F821
        out_table=snakemake.output.table,  # noqa: F821
        out_meta=snakemake.output.meta,  # noqa: F821
        resume=snakemake.params.resume,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )
