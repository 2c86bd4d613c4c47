"""The SiamFC tracker: one family of jitted tracking programs, and the host-side tracker classes.

:mod:`~siamfc_jax.tracker.device` holds the pure, jittable half: :class:`TrackerSpec` (the static
argument of every program), :func:`start` (one slot on its first frame and box) and :func:`step`
(every slot one frame on), over K slots' :class:`TrackState`; :func:`prepare_variables` computes
once what the backbone would otherwise derive from the weights every frame.
:mod:`~siamfc_jax.tracker.loop` is the one host loop tracking jobs (frame sources and their boxes)
in K slots; :mod:`~siamfc_jax.tracker.host` the classes :class:`Tracker` (one target, the GOT-10k
toolkit's tracker protocol) and :class:`BatchTracker` (N targets sharing a frame, or N videos of
one frame size).

The response geometry follows the network: :func:`fit_config` sets ``response_sz`` and
``total_stride`` of a :class:`TrackerConfig` from the backbone (17 and 8 for AlexNetV1, 33 and 4 for
AlexNetV2), so one config serves every backbone.

Conventions: boxes are 1-indexed ``[x, y, w, h]`` in pixels; on the device the target is a 0-indexed
centre ``[y, x]`` and a size ``[h, w]``; frames are (H, W, 3) RGB uint8.
"""

from siamfc_jax.tracker.device import (
    TrackerSpec,
    TrackState,
    embed,
    fit_config,
    locate,
    prepare_variables,
    search_responses,
    start,
    step,
    tracker_spec,
)
from siamfc_jax.tracker.host import BatchTracker, Tracker

__all__ = [
    "BatchTracker",
    "TrackState",
    "Tracker",
    "TrackerSpec",
    "embed",
    "fit_config",
    "locate",
    "prepare_variables",
    "search_responses",
    "start",
    "step",
    "tracker_spec",
]
