"""Tracking whole sequences and folders of sequences, scoring them, and writing their reports (host).

- :mod:`~siamfc_jax.evaluation.validation`: whether a path or sequence can be tracked, and why not;
- :mod:`~siamfc_jax.evaluation.tracking`: tracking sequences and folders (one at a time or K
  together) through the tracker's host loop, writing their files;
- :mod:`~siamfc_jax.evaluation.metrics`: IoU, centre error, success AUC, precision, and which
  frames count (the one definition the evaluation runs, the training loop and the benchmarks share);
- :mod:`~siamfc_jax.evaluation.scoring`: per-sequence results and overall summaries;
- :mod:`~siamfc_jax.evaluation.outputs`: what a run writes (per-sequence files, video, strip), and
  the output-folder policy;
- :mod:`~siamfc_jax.evaluation.reports`: box files, JSON records, one-line results, tables.
"""
