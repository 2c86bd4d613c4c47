"""The SiamFC tracker: device state and one jitted update per frame, plus host-side tracker classes.

:mod:`~siamfc_jax.tracker.device` holds the pure, jittable half and :mod:`~siamfc_jax.tracker.host`
the classes that read frames and weights; both are re-exported here.

Device part (pure, jittable): :func:`init_state` builds a :class:`TrackState` from the first frame and
box; :func:`update_state` does the whole per-frame step of siamfc-pytorch's ``TrackerSiamFC.update``
in one compiled call: :func:`search_responses` (search crops at every scale, backbone, correlation
with the cached exemplar features), then :func:`locate` (bicubic upsampling, scale penalty,
normalisation, cosine window, peak, new centre and size). :func:`init_states` /
:func:`update_states` do the same for N targets in one call. Each compiles once per frame size (and
number of targets). :func:`prepare_variables` computes once what the backbone would otherwise derive
from the weights every frame.

The response geometry follows the network: :func:`fit_config` sets ``response_sz`` and
``total_stride`` of a :class:`TrackerConfig` from the backbone (17 and 8 for AlexNetV1, 33 and 4 for
AlexNetV2), so one config serves every backbone.

Host part: :class:`Tracker` (one target, the GOT-10k toolkit's tracker protocol) and
:class:`BatchTracker` (N targets sharing a frame, or N videos of one frame size). Per frame only the
frame goes to the device and the 4-number boxes come back.

Conventions: boxes are 1-indexed ``[x, y, w, h]`` in pixels; on the device the target is a 0-indexed
centre ``[y, x]`` and a size ``[h, w]``; frames are (H, W, 3) RGB uint8.
"""

from siamfc_jax.tracker.device import (
    TrackState,
    embed,
    fit_config,
    init_state,
    init_states,
    locate,
    prepare_variables,
    search_responses,
    update_state,
    update_states,
)
from siamfc_jax.tracker.host import BatchTracker, Tracker

__all__ = [
    "BatchTracker",
    "TrackState",
    "Tracker",
    "embed",
    "fit_config",
    "init_state",
    "init_states",
    "locate",
    "prepare_variables",
    "search_responses",
    "update_state",
    "update_states",
]
