"""Snakemake adapter: train the surrogate, save model.pt, metrics.json and figures."""

from grids.gpus import claimed_gpu
from grids.surrogate.stage import run_train_surrogate
from grids.workflow import logged

# One device per GPU job when several GPU jobs run at once (--resources gpu=N).
with logged(snakemake.log[0]), claimed_gpu(snakemake.resources.gpu > 0):  # noqa: F821 (injected by Snakemake)
    run_train_surrogate(
        paired=snakemake.input.paired,  # noqa: F821
        targets=snakemake.input.targets,  # noqa: F821
        gtf=snakemake.input.gtf,  # noqa: F821
        settings={
            **snakemake.params.settings,  # noqa: F821
            "device": snakemake.params.device,  # noqa: F821
            "checkpoint_every": snakemake.resources.checkpoint_every,  # noqa: F821
        },
        threads=snakemake.threads,  # noqa: F821
        out_model=snakemake.output.model,  # noqa: F821
        out_metrics=snakemake.output.metrics,  # noqa: F821
        checkpoint=snakemake.params.checkpoint,  # noqa: F821
        out_heatmap=snakemake.output.heatmap,  # noqa: F821
        out_umap=snakemake.output.umap,  # noqa: F821
        out_predictors=snakemake.output.predictors,  # noqa: F821
    )
