"""Tracker(visualize=True) draws boxes as visualize does: columns x-1 … x+w-2 (0-indexed), by hand."""

from __future__ import annotations

import numpy as np

from siamfc_jax.tracker import host


def test_shown_box_covers_the_pixels_of_the_box(monkeypatch):
    shown = []
    monkeypatch.setattr(host.cv2, "imshow", lambda window, image: shown.append((window, image)))
    monkeypatch.setattr(host.cv2, "waitKey", lambda delay: -1)
    image = np.zeros((60, 80, 3), np.uint8)
    host._show(image, np.array([11.0, 21.0, 10.0, 5.0]), "SiamFC-JAX")
    (window, bgr), = shown
    assert window == "SiamFC-JAX" and bgr.shape == image.shape
    drawn = np.argwhere(bgr.any(axis=2))
    # A 10×5 box at 1-indexed (11, 21): pixel columns 10…19 and rows 20…24, nothing outside.
    assert drawn[:, 1].min() == 10 and drawn[:, 1].max() == 19
    assert drawn[:, 0].min() == 20 and drawn[:, 0].max() == 24
    assert bgr[22, 10, 2] > bgr[22, 10, 0]  # red in OpenCV's BGR order
