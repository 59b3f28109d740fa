"""Snakemake adapter: train the surrogate, save model.pt, metrics.json and figures."""

from grids.workflow import logged
from grids.workflow.gpus import claimed_gpu
from grids.workflow.stages.surrogate import run_train_surrogate

# One device per GPU job when several GPU jobs run at once (--resources gpu=N).
with logged(snakemake.log[0]), claimed_gpu(snakemake.resources.gpu > 0):
    run_train_surrogate(
        paired=snakemake.input.paired,
        targets=snakemake.input.targets,
        gtf=snakemake.input.gtf,
        settings={
            **snakemake.params.settings,
            "device": snakemake.params.device,
            "checkpoint_every": snakemake.resources.checkpoint_every,
        },
        threads=snakemake.threads,
        out_model=snakemake.output.model,
        out_metrics=snakemake.output.metrics,
        checkpoint=snakemake.params.checkpoint,
        out_heatmap=snakemake.output.heatmap,
        out_umap=snakemake.output.umap,
        out_predictors=snakemake.output.predictors,
    )
