"""ATAC stage: BAM conversion, barcode QC and cell calls, MACS peaks, the binary peak matrix."""

from .bam import BamInputError, bam_to_fragments
from .matrix import PeakMatrix, build_peak_matrix
from .peaks import PeakCallingError, call_peaks, consensus_peaks, read_peaks_bed, write_insertions, write_peaks_bed
from .qc import BarcodeQC, barcode_qc, call_cells

__all__ = [
    "BamInputError",
    "BarcodeQC",
    "PeakCallingError",
    "PeakMatrix",
    "bam_to_fragments",
    "barcode_qc",
    "build_peak_matrix",
    "call_cells",
    "call_peaks",
    "consensus_peaks",
    "read_peaks_bed",
    "write_insertions",
    "write_peaks_bed",
]
