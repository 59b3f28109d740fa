"""Snakemake adapter: the cross-cell-type matrix (paper Figure 3)."""

from grids.evaluate.stage import run_cross_celltype
from grids.workflow import logged

with logged(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
    run_cross_celltype(
        model=snakemake.input.model,  # noqa: F821
        paired=snakemake.input.paired,  # noqa: F821
        tables=snakemake.input.tables,  # noqa: F821
        metas=snakemake.input.metas,  # noqa: F821
        targets=snakemake.input.targets,  # noqa: F821
        split=snakemake.params.split,  # noqa: F821
        method=snakemake.params.method,  # noqa: F821
        set_target=snakemake.params.set_target,  # noqa: F821
        out_table=snakemake.output.table,  # noqa: F821
        out_figure=snakemake.output.figure,  # noqa: F821
    )
