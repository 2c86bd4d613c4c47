"""One-pass evaluation of tracked boxes against ground truth (OTB / GOT-10k toolkit conventions).

Host code, NumPy only. Boxes are ``[x, y, w, h]`` in pixels with a 1-indexed left-top corner.

- IoU of continuous boxes: the intersection width is ``max(0, min(x1 + w1, x2 + w2) - max(x1, x2))``
  (likewise the height), areas are ``w * h``.
- Success curve: the fraction of frames with IoU strictly greater than each of 21 thresholds
  ``0, 0.05, ..., 1``; its mean is the success AUC.
- Centre: ``xy + (wh - 1) / 2``; centre error: Euclidean distance in pixels; precision at 20 px: the
  fraction of frames whose error is at most 20.

With these conventions, and every frame counted including the first (whose predicted box is the
initial box), the numbers match the siamfc-pytorch reference ``summary.json`` of the test material.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLD = 20.0


def _boxes(boxes: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4) [x, y, w, h], got {array.shape}")
    return array


def iou(boxes_a: ArrayLike, boxes_b: ArrayLike) -> np.ndarray:
    """Intersection over union of boxes.

    Args:
        boxes_a, boxes_b: (..., 4) ``[x, y, w, h]`` in pixels, broadcastable against each other.

    Returns:
        (...) float64 IoU in [0, 1]; 0 where the union is empty (both boxes have zero area).
    """
    a, b = _boxes(boxes_a, "boxes_a"), _boxes(boxes_b, "boxes_b")
    overlap_w = np.maximum(
        0.0, np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    )
    overlap_h = np.maximum(
        0.0, np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    )
    intersection = overlap_w * overlap_h
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - intersection
    positive = union > 0
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=positive)


def centers(boxes: ArrayLike) -> np.ndarray:
    """Centres ``xy + (wh - 1) / 2`` of (..., 4) boxes, as (..., 2) ``[cx, cy]`` in 1-indexed pixels."""
    array = _boxes(boxes, "boxes")
    return array[..., :2] + (array[..., 2:] - 1.0) / 2.0


def center_error(boxes_a: ArrayLike, boxes_b: ArrayLike) -> np.ndarray:
    """Euclidean distance in pixels between the centres of (..., 4) boxes; returns (...)."""
    return np.linalg.norm(centers(boxes_a) - centers(boxes_b), axis=-1)


def success_curve(ious: ArrayLike, thresholds: ArrayLike = SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of the (N,) ``ious`` strictly above each threshold; returns (T,) for (T,) thresholds."""
    values = np.asarray(ious, dtype=np.float64).reshape(-1, 1)
    if values.size == 0:
        raise ValueError("success_curve needs at least one IoU")
    return np.mean(values > np.asarray(thresholds, dtype=np.float64)[None, :], axis=0)


def auc(ious: ArrayLike, thresholds: ArrayLike = SUCCESS_THRESHOLDS) -> float:
    """Success AUC: mean of :func:`success_curve` over the thresholds (21 from 0 to 1 by default)."""
    return float(np.mean(success_curve(ious, thresholds)))


def precision_at(errors: ArrayLike, threshold: float = PRECISION_THRESHOLD) -> float:
    """Fraction of the (N,) centre ``errors`` (pixels) that are at most ``threshold`` pixels."""
    values = np.asarray(errors, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("precision_at needs at least one centre error")
    return float(np.mean(values <= threshold))


def evaluated_frames(gt_boxes: ArrayLike, absent: ArrayLike | None = None) -> np.ndarray:
    """(N,) bool: the frames :func:`evaluate` scores.

    A frame counts unless its ground truth is unusable (any NaN, zero or negative width or height:
    how GOT-10k and LaSOT mark absent targets) or ``absent`` (optional (N,) bool) marks it.

    Raises:
        ValueError: ``absent`` is not (N,).
    """
    gt = _boxes(gt_boxes, "gt_boxes")
    valid = np.all(np.isfinite(gt), axis=-1) & (gt[..., 2] > 0) & (gt[..., 3] > 0)
    if absent is not None:
        absent_flags = np.asarray(absent, dtype=bool)
        if absent_flags.shape != (len(gt),):
            raise ValueError(f"absent must be ({len(gt)},), got {absent_flags.shape}")
        valid &= ~absent_flags
    return valid


def frame_scores(
    pred_boxes: ArrayLike, gt_boxes: ArrayLike, absent: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(E,) IoUs and (E,) centre errors in pixels of the E frames :func:`evaluated_frames` keeps.

    Args and Raises: as for :func:`evaluate`.
    """
    pred = _boxes(pred_boxes, "pred_boxes")
    gt = _boxes(gt_boxes, "gt_boxes")
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(
            f"pred_boxes and gt_boxes must both be (N, 4), got {pred.shape} and {gt.shape}"
        )
    valid = evaluated_frames(gt, absent)
    if not valid.any():
        raise ValueError("no frame has a usable ground-truth box")
    return iou(pred[valid], gt[valid]), center_error(pred[valid], gt[valid])


def summarize_frames(ious: ArrayLike, errors: ArrayLike) -> dict[str, float | int]:
    """``auc``, ``precision`` (at 20 px), ``mean_iou`` and ``frames`` of per-frame (E,) scores."""
    values = np.asarray(ious, dtype=np.float64)
    return {
        "auc": auc(values),
        "precision": precision_at(errors),
        "mean_iou": float(np.mean(values)),
        "frames": len(values),
    }


def evaluate(
    pred_boxes: ArrayLike, gt_boxes: ArrayLike, absent: ArrayLike | None = None
) -> dict[str, float | int]:
    """One-pass evaluation of a tracked sequence.

    Frames whose ground truth is unusable are left out: any NaN, zero or negative width or height
    (how GOT-10k and LaSOT mark absent targets), or ``absent`` True. Every other frame counts,
    the first one included (OTB convention).

    Args:
        pred_boxes: (N, 4) tracked boxes ``[x, y, w, h]``, 1-indexed pixels.
        gt_boxes: (N, 4) ground-truth boxes, same convention.
        absent: optional (N,) bool, True where the target is absent.

    Returns:
        ``auc`` (success AUC), ``precision`` (precision at 20 px), ``mean_iou``, all over the evaluated
        frames, and ``frames``, their number.

    Raises:
        ValueError: shapes differ, or no frame has usable ground truth.
    """
    return summarize_frames(*frame_scores(pred_boxes, gt_boxes, absent))
