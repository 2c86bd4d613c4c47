"""Device image operations of the tracker (pure ``jax.numpy``, jittable).

``crop`` cuts and resizes the exemplar and search squares as OpenCV does on the host; ``resize``
upsamples response maps with OpenCV's bicubic kernel; ``conv`` holds the formulations of the
network's convolutions and correlation, ``plan`` the value that says which computes what.
"""

from siamfc_jax.ops.crop import crop_and_resize
from siamfc_jax.ops.resize import cubic_resize_matrix, upsample

__all__ = ["crop_and_resize", "cubic_resize_matrix", "upsample"]
