"""The stage runners: one module per stage (``atac``, ``rna``, ``surrogate``, ``explain``,
``redundancy``, ``evaluate``), one function per rule, files in and files out.

Each is imported by name (each pulls in its own heavy dependencies), so the package itself exports nothing.
"""

__all__: list[str] = []
