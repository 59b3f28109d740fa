"""RNA stage: read counts, QC and normalise in Pegasus, label cell types, embed and draw.

Every step is a plain function on an :class:`anndata.AnnData` (cells x genes, cell names
``{sample}#{barcode}`` as on the ATAC side). Pegasus does the numerical work; these modules
convert to and from its ``MultimodalData`` and check inputs so that bad data fails with a
message naming the file or gene instead of deep inside Pegasus.

- ``inputs``: :func:`read_rna` (10x h5 or mtx folder, h5ad, h5mu);
- ``qc``: :func:`rna_qc` (QC, filtering, log-normalisation, highly variable genes);
- ``labels``: :func:`check_targets`, user cell-type tables (:func:`read_labels`,
  :func:`align_labels`), :func:`drop_small_cell_types` and marker-based :func:`infer_labels`;
- ``embedding``: the Pegasus conversion, PCA and :func:`umap`;
- ``figures``: :func:`qc_violin_figure`, :func:`umap_figure`.

The stage as the workflow's rule runs it, ``run_rna_stage``, is in :mod:`grids.workflow.stages.rna`.
"""

from .embedding import umap
from .figures import qc_violin_figure, umap_figure
from .inputs import read_rna
from .labels import (
    PEGASUS_MARKER_SETS,
    align_labels,
    check_targets,
    drop_small_cell_types,
    infer_labels,
    load_markers,
    read_labels,
)
from .qc import rna_qc

__all__ = [
    "PEGASUS_MARKER_SETS",
    "align_labels",
    "check_targets",
    "drop_small_cell_types",
    "infer_labels",
    "load_markers",
    "qc_violin_figure",
    "read_labels",
    "read_rna",
    "rna_qc",
    "umap",
    "umap_figure",
]
