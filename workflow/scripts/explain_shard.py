"""Snakemake adapter: one method over one shard of explanation targets."""

from grids.workflow import logged
from grids.workflow.gpus import claimed_gpu
from grids.workflow.stages.explain import run_explain_shard

# One device per GPU job when several GPU jobs run at once (--resources gpu=N).
with logged(snakemake.log[0]), claimed_gpu(snakemake.resources.gpu > 0):
    run_explain_shard(
        model=snakemake.input.model,
        paired=snakemake.input.paired,
        gtf=snakemake.input.gtf,
        tasks=snakemake.params.tasks,
        method=snakemake.wildcards.method,
        settings=snakemake.params.settings,
        mito_prefix=snakemake.params.mito_prefix,
        device=snakemake.params.device,
        out_table=snakemake.output.table,
        out_meta=snakemake.output.meta,
        resume=snakemake.params.resume,
        threads=snakemake.threads,
    )
