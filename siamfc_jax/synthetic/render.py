"""Rendering a planned synthetic scene into frames and per-frame annotations (host, NumPy/OpenCV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from siamfc_jax.synthetic.config import SyntheticConfig, SyntheticDataError, cover_label
from siamfc_jax.synthetic.painting import (
    composite,
    finish_frame,
    motion_blur_kernel,
    place_sprite,
)
from siamfc_jax.synthetic.scene import Scene, SceneObject, occlude, plan_scene, target_mask

# ---------------------------------------------------------------------------------------------------
# Rendering.


_MAX_BLUR_LENGTH = 31.0


@dataclass(frozen=True)
class RenderedSequence:
    frames: list[np.ndarray]
    boxes: np.ndarray
    cover: np.ndarray
    absence: np.ndarray
    cut_by_image: np.ndarray
    jpeg_quality: np.ndarray
    object_class: str
    motion_class: str
    mean_speed: float


def _blur_kernel(scene: Scene, t: int, speeds: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    """Motion-blur kernel of an object moving at ``speeds`` (its :meth:`Track.speeds`) in frame ``t``."""
    if scene.blur_exposure <= 0.0:
        return None
    speed, direction = speeds[0][t], speeds[1][t]
    length = min(scene.blur_exposure * speed, _MAX_BLUR_LENGTH)
    return motion_blur_kernel(length, direction) if length >= 2.0 else None


def _blur_background(frame: np.ndarray, scene: Scene, t: int, camera_speeds) -> None:
    """Smear the background ((3, H, W) planar, in place) along the camera's shake in frame ``t``
    (``camera_speeds``: speed and direction of the camera, as :meth:`Track.speeds` gives them for
    objects, which get their own blur from speeds that include the shake)."""
    kernel = None if camera_speeds is None else _blur_kernel(scene, t, camera_speeds)
    if kernel is not None:
        for plane in frame:
            cv2.filter2D(plane, -1, kernel, dst=plane, borderType=cv2.BORDER_REFLECT_101)


def _paint(frame: np.ndarray, x0: int, y0: int, patch: np.ndarray, kernel: np.ndarray | None) -> None:
    if kernel is None:
        composite(frame, x0, y0, patch, hard=True)
    else:
        blurred = cv2.filter2D(patch, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        composite(frame, x0, y0, blurred, hard=False)


def _draw(frame: np.ndarray, obj: SceneObject, t: int, kernel: np.ndarray | None):
    """Paint ``obj`` into ``frame``; returns its unblurred ``(x0, y0, patch)``."""
    pad = 0 if kernel is None else kernel.shape[0] // 2 + 1
    track = obj.track
    x0, y0, patch = place_sprite(obj.sprite, track.centres[t], track.sizes[t], track.angles[t], pad)
    _paint(frame, x0, y0, patch, kernel)
    return x0, y0, patch


def render(config: SyntheticConfig, index: int) -> RenderedSequence:
    scene = plan_scene(config, index)
    count = config.frames_per_sequence
    frame_w, frame_h = config.frame_size
    back = [o for o in scene.objects if not o.front]
    front = [o for o in scene.objects if o.front]
    speeds = {id(o): o.track.speeds() for o in [scene.target, *scene.objects]}
    camera_speeds = None
    if scene.camera_motion is not None:
        dx, dy = scene.camera_motion[:, 0], scene.camera_motion[:, 1]
        camera_speeds = (np.hypot(dx, dy), np.arctan2(dy, dx))
    columns = np.arange(frame_w, dtype=np.float32)[None, :] - frame_w / 2
    rows = np.arange(frame_h, dtype=np.float32)[:, None] - frame_h / 2
    half_diagonal = np.float32(0.5 * math.hypot(frame_w, frame_h))
    frames, boxes = [], np.zeros((count, 4))
    cover, cut = np.zeros(count, int), np.zeros(count, int)
    for t in range(count):
        pan_x, pan_y = scene.pan[t]
        frame = np.array(scene.background[:, pan_y : pan_y + frame_h, pan_x : pan_x + frame_w])
        _blur_background(frame, scene, t, camera_speeds)
        for obj in back:
            _draw(frame, obj, t, _blur_kernel(scene, t, speeds[id(obj)]))

        kernel = _blur_kernel(scene, t, speeds[id(scene.target)])
        pad = 0 if kernel is None else kernel.shape[0] // 2 + 1
        x0, y0, patch, _, total, (frame_slices, visible) = target_mask(
            scene.target, t, config.frame_size, pad
        )
        _paint(frame, x0, y0, patch, kernel)
        in_rows = np.flatnonzero(visible.any(axis=1))
        in_cols = np.flatnonzero(visible.any(axis=0))
        if len(in_rows):
            top, left = frame_slices[0].start + in_rows[0], frame_slices[1].start + in_cols[0]
            boxes[t] = (
                left + 1,
                top + 1,
                in_cols[-1] - in_cols[0] + 1,
                in_rows[-1] - in_rows[0] + 1,
            )
        else:  # wholly out of view (frame 0 never is): the last box, annotated absent (cover 0)
            boxes[t] = boxes[t - 1]
        cut[t] = int(visible.sum() < total)

        for obj in front:
            ox, oy, object_patch = _draw(frame, obj, t, _blur_kernel(scene, t, speeds[id(obj)]))
            occlude(visible, frame_slices, ox, oy, object_patch[..., 3])
        cover[t] = cover_label(int(visible.sum()), total)

        ramp = None
        if scene.ramp is not None:
            strength, cos_d, sin_d = scene.ramp[t].astype(np.float32)
            ramp = 1.0 + strength * (columns * cos_d + rows * sin_d) / half_diagonal
        noise = None
        if scene.noise is not None:
            nx, ny = scene.noise_offsets[t]
            noise = scene.noise[:, ny : ny + frame_h, nx : nx + frame_w]
        frames.append(finish_frame(frame, scene.gain[t], scene.offset[t], ramp, noise))

    mean_speed = float(np.mean(speeds[id(scene.target)][0]))
    return RenderedSequence(
        frames=frames,
        boxes=boxes,
        cover=cover,
        absence=(cover == 0).astype(int),
        cut_by_image=cut,
        jpeg_quality=scene.jpeg_quality,
        object_class=f"{scene.target_texture} {scene.target_shape}".replace("_", " "),
        motion_class=scene.motion_class,
        mean_speed=mean_speed,
    )


def render_sequence(
    config: SyntheticConfig, index: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Render synthetic sequence ``index`` of ``config`` (deterministic in ``(config, index)``).

    Returns:
        ``(frames, boxes, cover, absence)``: ``frames`` is a list of N (H, W, 3) RGB uint8 arrays
        (before JPEG compression, which :func:`write_got10k` adds); ``boxes`` (N, 4) float64 1-indexed
        ``[x, y, w, h]`` in pixels; ``cover`` (N,) int GOT-10k visibility labels 0..8; ``absence`` (N,)
        int 0/1. See the module docstring for their exact definitions.
    """
    if index < 0:
        raise SyntheticDataError(f"sequence index must be >= 0, got {index}")
    rendered = render(config, index)
    return rendered.frames, rendered.boxes, rendered.cover, rendered.absence
