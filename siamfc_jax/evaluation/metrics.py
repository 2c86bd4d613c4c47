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

Benchmark protocols (:func:`protocol_scores`, :data:`PROTOCOLS`), as the GOT-10k toolkit computes
them (``got10k.experiments``):

- ``otb``: every frame counts; per sequence the success curve (21 thresholds) and precision at
  20 px; overall: their means over the sequences (success AUC, precision).
- ``uav123``: as ``otb``, but frames whose ground truth has a NaN are left out.
- ``lasot``: as ``uav123`` (absent frames left out too), plus the normalised precision: the
  centre error divided per axis by the ground truth's width and height (at least 1 px), its
  curve over 51 thresholds 0, 0.01, …, 0.5 averaged (the area under it), then over sequences.
- ``got10k``: frame 0 is left out, and so are frames whose target is not visible (``cover`` 0,
  else ``absence``, else a NaN or empty ground truth); both boxes are clipped to the frame; the
  IoUs of all sequences' frames are pooled: AO is their mean, SR0.50 and SR0.75 the fractions
  above 0.5 and 0.75.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLD = 20.0
NORMALIZED_PRECISION_THRESHOLDS = np.linspace(0.0, 0.5, 51)
PROTOCOLS = ("otb", "uav123", "got10k", "lasot")


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


# ---------------------------------------------------------------------------------------------
# Benchmark protocols


@dataclass(frozen=True, eq=False)
class Run:
    """One tracked sequence as a protocol sees it.

    Attributes:
      pred: (N, 4) tracked boxes, 1-indexed ``[x, y, w, h]``; row 0 is the initial box.
      truth: (N, 4) ground truth, NaN or empty rows where there is none.
      absence: optional (N,) bool, True where the target is absent.
      cover: optional (N,) GOT-10k visible fraction in eighths (0 = not visible).
      frame_size: ``(width, height)`` in pixels (GOT-10k clips boxes to it).
    """

    pred: np.ndarray
    truth: np.ndarray
    absence: np.ndarray | None = None
    cover: np.ndarray | None = None
    frame_size: tuple[int, int] | None = None


def clip_to_frame(boxes: ArrayLike, frame_size: tuple[int, int]) -> np.ndarray:
    """(N, 4) boxes clipped as the GOT-10k toolkit bounds them: ``x`` to ``[0, W]``, ``w`` to
    ``[0, W - x]`` (likewise ``y``, ``h`` with the height)."""
    clipped = _boxes(boxes, "boxes").copy()
    width, height = frame_size
    clipped[..., 0] = np.clip(clipped[..., 0], 0, width)
    clipped[..., 1] = np.clip(clipped[..., 1], 0, height)
    clipped[..., 2] = np.clip(clipped[..., 2], 0, width - clipped[..., 0])
    clipped[..., 3] = np.clip(clipped[..., 3], 0, height - clipped[..., 1])
    return clipped


def normalized_center_error(pred_boxes: ArrayLike, gt_boxes: ArrayLike) -> np.ndarray:
    """(N,) centre errors with each axis divided by the ground truth's width / height (>= 1 px)."""
    gt = _boxes(gt_boxes, "gt_boxes")
    offsets = centers(pred_boxes) - centers(gt)
    return np.linalg.norm(offsets / np.maximum(gt[..., 2:], 1.0), axis=-1)


def normalized_precision(errors: ArrayLike) -> float:
    """Area under the normalised precision curve: the mean over
    :data:`NORMALIZED_PRECISION_THRESHOLDS` of the fraction of ``errors`` at most each threshold."""
    values = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
    if values.size == 0:
        raise ValueError("normalized_precision needs at least one centre error")
    return float(np.mean(values <= NORMALIZED_PRECISION_THRESHOLDS[None, :]))


def protocol_frames(protocol: str, run: Run) -> np.ndarray:
    """(N,) bool: the frames of ``run`` that ``protocol`` scores (see the module docstring)."""
    truth = _boxes(run.truth, "truth")
    count = len(truth)
    if protocol == "otb":
        return np.ones(count, bool)
    finite = np.all(np.isfinite(truth), axis=1)
    if protocol == "uav123":
        return finite
    absent = np.zeros(count, bool) if run.absence is None else np.asarray(run.absence, bool)
    if protocol == "lasot":
        return finite & ~absent
    if protocol == "got10k":
        if run.cover is not None:
            visible = np.asarray(run.cover) > 0
        else:
            visible = ~absent & (truth[:, 2] > 0) & (truth[:, 3] > 0)
        mask = finite & visible
        mask[:1] = False
        return mask
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def protocol_scores(protocol: str, runs: list[Run]) -> dict[str, float | int]:
    """The overall figures a benchmark reports for ``runs`` under ``protocol``.

    Returns:
      ``otb`` / ``uav123``: ``auc``, ``precision``; ``lasot``: those and
      ``normalized_precision`` (all means over the sequences); ``got10k``: ``ao``, ``sr50``,
      ``sr75`` over the pooled frames. Always ``sequences`` and ``frames`` (frames scored).

    Raises:
      ValueError: unknown protocol, or no run has a scored frame.
    """
    masks = [protocol_frames(protocol, run) for run in runs]
    frames = int(sum(mask.sum() for mask in masks))
    if frames == 0:
        raise ValueError(f"no frame to score under the {protocol} protocol")
    if protocol == "got10k":
        ious = np.concatenate(
            [
                iou(
                    clip_to_frame(_boxes(run.pred, "pred")[mask], run.frame_size),
                    clip_to_frame(_boxes(run.truth, "truth")[mask], run.frame_size),
                )
                if run.frame_size is not None
                else iou(run.pred[mask], run.truth[mask])
                for run, mask in zip(runs, masks, strict=True)
            ]
        )
        return {
            "ao": float(np.mean(ious)),
            "sr50": float(np.mean(ious > 0.5)),
            "sr75": float(np.mean(ious > 0.75)),
            "sequences": len(runs),
            "frames": frames,
        }
    scored = [(run, mask) for run, mask in zip(runs, masks, strict=True) if mask.any()]
    aucs, precisions, normalized = [], [], []
    for run, mask in scored:
        pred, truth = _boxes(run.pred, "pred")[mask], _boxes(run.truth, "truth")[mask]
        aucs.append(auc(iou(pred, truth)))
        precisions.append(precision_at(center_error(pred, truth)))
        normalized.append(normalized_precision(normalized_center_error(pred, truth)))
    scores: dict[str, float | int] = {
        "auc": float(np.mean(aucs)),
        "precision": float(np.mean(precisions)),
    }
    if protocol == "lasot":
        scores["normalized_precision"] = float(np.mean(normalized))
    scores.update(sequences=len(scored), frames=frames)
    return scores
