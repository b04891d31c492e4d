"""Kinds of input: each implements :class:`~audit.modalities.base.Modality` (open, blocks, attribute, merge,
finish, record), and :func:`audit.pipeline.run_audit` drives whichever the data calls for.

- :mod:`~audit.modalities.tabular` (with :mod:`~audit.modalities.tabular_evidence`): CSV, TSV and Parquet tables;
- :mod:`~audit.modalities.image`: image folders and CSVs of image paths;
- :mod:`~audit.modalities.text` (with :mod:`~audit.modalities.text_evidence`): text classifiers on a text column
  (imported only for text audits: it needs the ``text`` extra).
"""

__all__: list[str] = []
