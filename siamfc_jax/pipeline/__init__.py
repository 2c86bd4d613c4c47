"""The training input pipeline (host): curated crops, pair sampling, augmentation and batches.

- :mod:`~siamfc_jax.pipeline.crops`: square crops around a target (OpenCV), siamfc-pytorch's crop;
- :mod:`~siamfc_jax.pipeline.curate`: each annotated frame curated once into a 255×255 crop, with the
  siamfc-pytorch frame filter;
- :mod:`~siamfc_jax.pipeline.tfds_builder`: the ``siamfc_crops`` TFDS dataset (array_record) of
  curated crops, and its command line ``python -m siamfc_jax.pipeline.tfds_builder``;
- :mod:`~siamfc_jax.pipeline.pairs` and :mod:`~siamfc_jax.pipeline.transforms`: deterministic pairs
  from one track and siamfc-pytorch's augmentations;
- :mod:`~siamfc_jax.pipeline.loader`: Grain batches, per-process slices of the global batch;
- :mod:`~siamfc_jax.pipeline.sources`: what a run's ``--data`` names, prepared and opened.

Sequences come from :mod:`siamfc_jax.sequences` and the synthetic world from
:mod:`siamfc_jax.synthetic`; nothing here runs on the accelerator.
"""
