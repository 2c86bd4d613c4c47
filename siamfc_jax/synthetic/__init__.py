"""The synthetic tracking world: procedurally generated videos, siamfc_jax's default training data.

Each sequence shows a textured target object (ellipse, polygon, rounded rectangle or blob; stripes,
checkers, noise, gradient, dots or a smooth colour field; aspect ratio about 0.3-3) moving over a
cluttered textured background, with the nuisances trackers meet in real videos: scale change, in-plane
rotation, fast motion, similar-looking distractors (objects whose texture and colours are close to the
target's), partial occlusion (bars and shapes passing in front, and other objects), illumination change
(gradual or abrupt brightness, contrast and colour shifts, moving light gradients), motion blur along
the motion (proportional to speed), sensor noise, a panning camera, and JPEG artefacts (frames are saved
as JPEG with a random quality).

Determinism: sequence ``index`` of a :class:`SyntheticConfig` depends only on the config (its seed
included) and ``index``, never on other sequences, so sequences can be generated in any order and in
parallel. Distractors, clutter, occluders, illumination, blur, camera pan, noise, background and JPEG
quality each draw from their own random stream, so switching one of them off (probability 0) leaves
the rest of the sequence unchanged (scale change, rotation and fast motion are properties of the
target's own motion).

Annotations (per frame):

- box: the axis-aligned bounding box of the target's full extent, visible or occluded (as GOT-10k),
  clipped to the frame where the target is partly outside it; 1-indexed ``[x, y, w, h]`` in pixels:
  a target covering pixel columns ``c0..c1`` (0-indexed, inclusive) has ``x = c0 + 1``,
  ``w = c1 - c0 + 1`` (OTB / GOT-10k convention), and likewise for rows.
- cover: the visible fraction ``r`` of the target's pixels (hidden by occluders or outside the frame),
  quantised to GOT-10k's 0..8 scale: 0 when ``r = 0`` (fully occluded), 8 when ``r = 1`` (fully
  visible), otherwise ``ceil(8 r)`` limited to 1..7, so label ``k`` means ``r`` in ``((k-1)/8, k/8]``
  except that 8 is kept for unoccluded frames (any occlusion gives at most 7). ``cover / 8`` thus
  approximates the visible ratio, which is how GOT-10k consumers read it.
- absence: 1 when no pixel of the target is visible (``cover == 0``), else 0.
- cut_by_image: 1 when part of the target lies outside the frame, else 0.

The target never leaves the frame by more than ``max_truncation`` of its size per axis, is fully
visible in the first frame, and occluders never hide more than ``1 - min_visibility`` of it (an object
that would is moved behind the target for the whole sequence), because SiamFC cannot re-detect a lost
target.

On disk (:func:`~siamfc_jax.synthetic.writer.write_got10k`) the layout is GOT-10k's:
``<root>/<subset>/list.txt`` and one folder per sequence named ``SYN_000001`` ... (``index + 1``)
with ``00000001.jpg`` ..., ``groundtruth.txt``, ``absence.label``, ``cover.label``,
``cut_by_image.label`` and ``meta_info.ini``.

Command line::

    python -m siamfc_jax.synthetic --out data/synthetic [--num-sequences N] [--frames N]
        [--seed S] [--subset train] [--workers W] [--frame-size 320x240] [--no-progress]

Modules: :mod:`~siamfc_jax.synthetic.config` (what to generate), :mod:`~siamfc_jax.synthetic.scene`
(planning motion, objects, lighting and occlusion), :mod:`~siamfc_jax.synthetic.painting` (textures,
sprites, compositing), :mod:`~siamfc_jax.synthetic.render` (frames and annotations),
:mod:`~siamfc_jax.synthetic.writer` (GOT-10k layout on disk), :mod:`~siamfc_jax.synthetic.demo` (the
demo sequence), :mod:`~siamfc_jax.synthetic.__main__` (the command line above).
"""

from siamfc_jax.synthetic.config import SyntheticConfig, SyntheticDataError, config_fingerprint
from siamfc_jax.synthetic.demo import ensure_demo_sequence
from siamfc_jax.synthetic.render import render_sequence
from siamfc_jax.synthetic.writer import write_got10k

__all__ = [
    "SyntheticConfig",
    "SyntheticDataError",
    "config_fingerprint",
    "ensure_demo_sequence",
    "render_sequence",
    "write_got10k",
]
