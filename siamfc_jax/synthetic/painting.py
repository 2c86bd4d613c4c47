"""Drawing primitives of the synthetic tracking world: styles, textures, shapes, sprites, compositing.

Host code (NumPy + OpenCV), no Python loops over pixels. Frames being composed are planar float32
RGB arrays of shape (3, H, W) with values in 0..255 (NumPy operations on contiguous planes are several
times faster than on interleaved pixels, whose 3-long inner axis defeats vectorisation);
:func:`finish_frame` turns them into the usual (H, W, 3) uint8. Textures and sprites are interleaved
(H, W, C), as OpenCV's warps and filters want them. Pixel centres sit at integer coordinates (OpenCV's
convention): pixel column ``c`` covers ``[c - 0.5, c + 0.5)``.

An object is drawn from a :class:`Sprite`: a premultiplied RGBA image of its texture cut out by its
shape, rendered once per sequence at the largest size the object reaches, then warped (scaled,
rotated, translated with sub-pixel accuracy) into each frame by :func:`place_sprite`.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from siamfc_jax.synthetic.photos import COLOUR_PHOTOS, PHOTO_FILES, load_photos, photo_crop

TEXTURE_KINDS = ("stripes", "checkers", "noise", "gradient", "dots", "smooth")
SHAPE_KINDS = ("ellipse", "polygon", "rounded_rectangle", "blob")

# A pixel belongs to an object when its warped alpha reaches this value; the same mask decides which
# pixels the object paints, so ground-truth boxes taken from it match the pixels exactly.
MASK_THRESHOLD = 0.5

# cv2 drawing functions take fixed-point vertices with this many fractional bits (sub-pixel shapes).
_SHIFT_BITS = 4
_SHIFT_SCALE = float(1 << _SHIFT_BITS)

Colour = tuple[float, float, float]


@dataclass(frozen=True)
class ObjectStyle:
    """How an object looks: texture, shape kind and palette.

    ``colours`` holds three RGB colours (0..255): the two texture colours and the colour of the decals
    (small shapes painted on the object). ``period`` is the texture's feature size in pixels of the
    sprite, ``angle`` its orientation in radians, ``hardness`` the sharpness of its transitions
    (1 = smooth, 8 = nearly binary).
    """

    texture: str
    shape: str
    colours: tuple[Colour, Colour, Colour]
    period: float
    angle: float
    hardness: float
    decals: int
    outline: bool
    # ``texture == "photo"``: a crop of photograph ``photo`` (:data:`~siamfc_jax.synthetic.photos.
    # PHOTO_FILES`) centred at ``anchor`` (fractions of its width and height), ``period`` photo pixels
    # per sprite pixel. Greyscale photographs are coloured from ``colours[1]`` (dark) to ``colours[0]``.
    photo: int = -1
    anchor: tuple[float, float] = (0.5, 0.5)


@dataclass(frozen=True)
class Sprite:
    """An object's appearance at its largest size, ready to be warped into frames.

    ``rgba``: (h, w, 4) float32, RGB premultiplied by alpha (alpha in 0..1); ``alpha``: (h, w) float32
    copy of the alpha channel (warped alone when only the mask is needed). ``half_rgba``/``half_alpha``
    are the same at half resolution (None for small sprites), used when the object is drawn at less
    than half its sprite size, so that downscaled textures do not alias.
    """

    rgba: np.ndarray
    alpha: np.ndarray
    half_rgba: np.ndarray | None
    half_alpha: np.ndarray | None


def _hsv(hue: float, saturation: float, value: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, min(max(saturation, 0.0), 1.0), min(max(value, 0.0), 1.0))
    return (255.0 * r, 255.0 * g, 255.0 * b)


def random_style(rng: np.random.Generator, photo_prob: float = 0.0) -> ObjectStyle:
    """A random look: any texture and shape kind, a palette of two related colours and a decal colour.

    With probability ``photo_prob`` the texture is a crop of a real photograph instead. Its draws
    come after the others, so ``photo_prob=0`` draws the same sequence as a style without photographs.
    """
    hue = rng.random()
    value = rng.uniform(0.35, 1.0)
    first = _hsv(hue, rng.uniform(0.25, 1.0), value)
    # The second texture colour is an analogous, complementary or unrelated hue of a different value,
    # so that the texture keeps visible contrast.
    relation = rng.integers(3)
    second_hue = (hue + rng.normal(0.0, 0.06), hue + 0.5 + rng.normal(0.0, 0.05), rng.random())[relation]
    second_value = value + rng.choice((-1.0, 1.0)) * rng.uniform(0.2, 0.5)
    if not 0.1 <= second_value <= 1.0:
        second_value = value - (second_value - value)
    second = _hsv(second_hue, rng.uniform(0.2, 1.0), second_value)
    decal = _hsv(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.2, 1.0))
    style = ObjectStyle(
        texture=TEXTURE_KINDS[rng.integers(len(TEXTURE_KINDS))],
        shape=SHAPE_KINDS[rng.integers(len(SHAPE_KINDS))],
        colours=(first, second, decal),
        period=float(np.exp(rng.uniform(np.log(4.0), np.log(18.0)))),
        angle=float(rng.uniform(0.0, np.pi)),
        hardness=float(rng.uniform(1.0, 8.0)),
        decals=int(rng.integers(0, 3)),
        outline=bool(rng.random() < 0.4),
    )
    if photo_prob > 0.0 and rng.random() < photo_prob:
        style = _photo_style(rng, style, 0.1, (0.3, 3.0), decals=min(style.decals, 1))
    return style


def _photo_style(
    rng: np.random.Generator,
    style: ObjectStyle,
    margin: float,
    scale_range: tuple[float, float],
    **changes,
) -> ObjectStyle:
    """``style`` textured by a random photograph instead: anchor within ``margin`` of its edges
    (fractions), log-uniform ``scale_range`` photo pixels per pixel; ``changes`` set other fields."""
    return dataclasses.replace(
        style,
        texture="photo",
        photo=int(rng.integers(len(PHOTO_FILES))),
        anchor=(float(rng.uniform(margin, 1.0 - margin)), float(rng.uniform(margin, 1.0 - margin))),
        period=float(np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1])))),
        **changes,
    )


def _jitter_colour(rng: np.random.Generator, colour: Colour, amount: float) -> Colour:
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255.0 for c in colour))
    return _hsv(
        hue + rng.normal(0.0, 0.03 * amount),
        saturation + rng.normal(0.0, 0.08 * amount),
        value + rng.normal(0.0, 0.08 * amount),
    )


def similar_style(rng: np.random.Generator, style: ObjectStyle, amount: float = 1.0) -> ObjectStyle:
    """A look close to ``style`` (a distractor): same texture kind, slightly shifted colours and scale.

    ``amount`` scales the perturbation (0 gives the same style). The shape kind is kept with
    probability 0.6, so distractors differ from the target mostly in details, not at a glance.
    """
    shape = style.shape if rng.random() < 0.6 else SHAPE_KINDS[rng.integers(len(SHAPE_KINDS))]
    first, second, decal = style.colours
    return ObjectStyle(
        texture=style.texture,
        shape=shape,
        colours=(
            _jitter_colour(rng, first, amount),
            _jitter_colour(rng, second, amount),
            _jitter_colour(rng, decal, 3.0 * amount),
        ),
        period=style.period * float(np.exp(rng.normal(0.0, 0.15 * amount))),
        angle=style.angle + float(rng.normal(0.0, 0.3 * amount)),
        hardness=style.hardness,
        decals=style.decals if rng.random() < 0.7 else int(rng.integers(0, 3)),
        outline=style.outline,
        photo=style.photo,
        anchor=_jitter_anchor(rng, style, amount),
    )


def _jitter_anchor(rng: np.random.Generator, style: ObjectStyle, amount: float) -> tuple[float, float]:
    """A photo texture's anchor moved a little (a nearby part of the same photograph)."""
    if style.texture != "photo":
        return style.anchor
    moved = np.clip(np.asarray(style.anchor) + rng.normal(0.0, 0.04 * amount, 2), 0.05, 0.95)
    return (float(moved[0]), float(moved[1]))


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """(height, width) float32 noise in 0..1 whose features are about ``cell`` pixels wide."""
    grid_h = max(2, math.ceil(height / cell) + 2)
    grid_w = max(2, math.ceil(width / cell) + 2)
    grid = rng.random((grid_h, grid_w), dtype=np.float32)
    noise = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(noise, 0.0, 1.0)


def texture(rng: np.random.Generator, style: ObjectStyle, height: int, width: int) -> np.ndarray:
    """(height, width, 3) float32 RGB texture (0..255) of ``style``; random phase and offsets."""
    if style.texture == "photo":
        return _photo_texture(style, height, width)
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    cos_a, sin_a = np.float32(math.cos(style.angle)), np.float32(math.sin(style.angle))
    u = x * cos_a + y * sin_a + np.float32(rng.uniform(0.0, 64.0))
    v = y * cos_a - x * sin_a + np.float32(rng.uniform(0.0, 64.0))
    period = np.float32(style.period)
    if style.texture == "stripes":
        weight = 0.5 + 0.5 * np.sin(u * np.float32(2.0 * np.pi) / period)
    elif style.texture == "checkers":
        weight = ((np.floor(u / period) + np.floor(v / period)) % 2.0).astype(np.float32)
    elif style.texture == "noise":
        weight = _smooth_noise(rng, height, width, style.period)
    elif style.texture == "gradient":
        if rng.random() < 0.5:
            span = np.float32(max(abs(width * cos_a) + abs(height * sin_a), 1.0))
            weight = (u - u.min()) / span
        else:
            cy, cx = rng.uniform(0.0, height), rng.uniform(0.0, width)
            radius = np.hypot(y - np.float32(cy), x - np.float32(cx))
            weight = radius / max(float(radius.max()), 1.0)
    elif style.texture == "dots":
        du = u % period - period / 2
        dv = v % period - period / 2
        dot_radius = np.float32(rng.uniform(0.2, 0.4)) * period
        weight = np.clip(dot_radius - np.sqrt(du * du + dv * dv) + 0.5, 0.0, 1.0)
    else:  # "smooth": a single colour gently modulated by the second one
        weight = 0.35 * _smooth_noise(rng, height, width, max(height, width) / 2.0)
    weight = np.broadcast_to(weight, (height, width))
    if style.texture in ("stripes", "noise"):
        weight = np.clip((weight - 0.5) * np.float32(style.hardness) + 0.5, 0.0, 1.0)
    first = np.asarray(style.colours[0], np.float32)
    second = np.asarray(style.colours[1], np.float32)
    return first + (second - first) * weight[..., None]


def _photo_texture(style: ObjectStyle, height: int, width: int) -> np.ndarray:
    photos = load_photos()
    image = photo_crop(photos[style.photo], height, width, style.anchor, style.period, style.angle)
    if style.photo >= COLOUR_PHOTOS:
        weight = image[..., :1] * np.float32(1.0 / 255.0)
        dark = np.asarray(style.colours[1], np.float32)
        light = np.asarray(style.colours[0], np.float32)
        image = dark + (light - dark) * weight
    return image


def shape_polygon(rng: np.random.Generator, kind: str, width: float, height: float) -> np.ndarray:
    """Outline of a random shape of ``kind`` spanning a ``width`` x ``height`` box exactly.

    Returns (K, 2) float64 vertices ``(x, y)`` in pixel coordinates of the box, whose pixels have
    centres at ``0..width-1`` and ``0..height-1`` (so the outline runs from -0.5 to width - 0.5).
    Every shape is star-shaped around its centre and touches all four sides of the box.
    """
    if kind == "ellipse":
        theta = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
        unit = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    elif kind == "polygon":
        count = int(rng.integers(3, 9))
        theta = (np.arange(count) + rng.uniform(-0.3, 0.3, count)) * (2.0 * np.pi / count)
        theta += rng.uniform(0.0, 2.0 * np.pi)
        radius = rng.uniform(0.7, 1.0, count)
        unit = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    elif kind == "rounded_rectangle":
        corner = rng.uniform(0.1, 0.7)
        arc = np.linspace(0.0, np.pi / 2.0, 10)
        quarters = []
        for k, (sx, sy) in enumerate(((1, 1), (-1, 1), (-1, -1), (1, -1))):
            phase = arc + k * np.pi / 2.0
            quarters.append(
                np.stack(
                    [
                        sx * (1.0 - corner) + corner * np.cos(phase),
                        sy * (1.0 - corner) + corner * np.sin(phase),
                    ],
                    axis=1,
                )
            )
        unit = np.concatenate(quarters)
    elif kind == "blob":
        theta = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
        radius = np.ones_like(theta)
        for harmonic in range(2, 6):
            radius += rng.uniform(0.0, 0.35 / harmonic) * np.cos(harmonic * theta + rng.uniform(0, 7))
        unit = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    else:
        raise ValueError(f"unknown shape kind {kind!r}; expected one of {SHAPE_KINDS}")
    low, high = unit.min(axis=0), unit.max(axis=0)
    unit01 = (unit - low) / (high - low)
    return unit01 * np.array([width, height]) - 0.5


def _fill_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) float32 anti-aliased coverage (0..1) of a polygon in pixel coordinates."""
    mask = np.zeros((height, width), np.uint8)
    points = np.round(polygon * _SHIFT_SCALE).astype(np.int32)
    cv2.fillPoly(mask, [points], 255, lineType=cv2.LINE_AA, shift=_SHIFT_BITS)
    return mask.astype(np.float32) * np.float32(1.0 / 255.0)


def make_sprite(rng: np.random.Generator, style: ObjectStyle, width: int, height: int) -> Sprite:
    """Render an object of ``style`` whose shape spans ``width`` x ``height`` pixels (both >= 2)."""
    width, height = max(int(width), 2), max(int(height), 2)
    image = texture(rng, style, height, width)
    for _ in range(style.decals):
        decal_w = width * rng.uniform(0.15, 0.45)
        decal_h = height * rng.uniform(0.15, 0.45)
        decal = shape_polygon(rng, SHAPE_KINDS[rng.integers(len(SHAPE_KINDS))], decal_w, decal_h)
        decal += [rng.uniform(0.1, 0.9) * width - decal_w / 2, rng.uniform(0.1, 0.9) * height - decal_h / 2]
        coverage = _fill_mask(decal, height, width)[..., None]
        image += (np.asarray(style.colours[2], np.float32) - image) * coverage
    outline = shape_polygon(rng, style.shape, width, height)
    alpha = _fill_mask(outline, height, width)
    if style.outline:
        edge = np.zeros((height, width), np.uint8)
        thickness = max(1, round(0.05 * min(width, height)))
        points = np.round(outline * _SHIFT_SCALE).astype(np.int32)
        cv2.polylines(edge, [points], True, 255, thickness, cv2.LINE_AA, _SHIFT_BITS)
        image *= 1.0 - np.float32(0.6 / 255.0) * edge.astype(np.float32)[..., None]
    rgba = np.concatenate([image * alpha[..., None], alpha[..., None]], axis=2)
    if min(width, height) >= 16:
        half_size = (max(width // 2, 1), max(height // 2, 1))
        half_rgba = cv2.resize(rgba, half_size, interpolation=cv2.INTER_AREA)
        half_alpha = np.ascontiguousarray(half_rgba[..., 3])
    else:
        half_rgba = half_alpha = None
    return Sprite(rgba=rgba, alpha=alpha, half_rgba=half_rgba, half_alpha=half_alpha)


def place_sprite(
    sprite: Sprite,
    centre: tuple[float, float],
    size: tuple[float, float],
    angle: float,
    pad: int = 0,
    alpha_only: bool = False,
) -> tuple[int, int, np.ndarray]:
    """Warp a sprite into frame coordinates.

    Args:
        sprite: the object's appearance.
        centre: ``(x, y)`` of the object's centre in frame pixels (0-indexed pixel centres).
        size: ``(w, h)`` of the object's shape before rotation, in pixels.
        angle: in-plane rotation in radians (positive turns +x towards +y).
        pad: extra pixels of empty margin around the warped object (room for a blur kernel).
        alpha_only: warp only the alpha channel.

    Returns:
        ``(x0, y0, patch)``: the patch covers frame columns ``x0 .. x0 + patch_w - 1`` and rows
        ``y0 .. y0 + patch_h - 1`` (possibly beyond the frame); it is (patch_h, patch_w, 4) float32
        premultiplied RGBA, or (patch_h, patch_w) alpha when ``alpha_only``.
    """
    width, height = size
    rgba, alpha = sprite.rgba, sprite.alpha
    if sprite.half_rgba is not None and max(width / rgba.shape[1], height / rgba.shape[0]) < 0.5:
        rgba, alpha = sprite.half_rgba, sprite.half_alpha
    source_h, source_w = alpha.shape
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    # Linear part [[a, b], [c, d]] maps sprite pixels to frame pixels: scale, then rotate.
    a, b = cos_a * width / source_w, -sin_a * height / source_h
    c, d = sin_a * width / source_w, cos_a * height / source_h
    half_x = 0.5 * (abs(a) * source_w + abs(b) * source_h)
    half_y = 0.5 * (abs(c) * source_w + abs(d) * source_h)
    centre_x, centre_y = float(centre[0]), float(centre[1])
    x0 = math.floor(centre_x - half_x) - pad - 1
    y0 = math.floor(centre_y - half_y) - pad - 1
    x1 = math.ceil(centre_x + half_x) + pad + 2
    y1 = math.ceil(centre_y + half_y) + pad + 2
    # The sprite's centre pixel lands on the object's centre.
    source_x, source_y = (source_w - 1) / 2.0, (source_h - 1) / 2.0
    matrix = np.array(
        [
            [a, b, centre_x - x0 - a * source_x - b * source_y],
            [c, d, centre_y - y0 - c * source_x - d * source_y],
        ]
    )
    patch = cv2.warpAffine(
        alpha if alpha_only else rgba,
        matrix,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return x0, y0, patch


def motion_blur_kernel(length: float, angle: float) -> np.ndarray:
    """(k, k) float32 kernel (sum 1) smearing along a line of ``length`` pixels at ``angle`` radians."""
    size = math.ceil(length) | 1
    canvas = np.zeros((size, size), np.uint8)
    centre = (size - 1) / 2.0
    dx, dy = 0.5 * (length - 1.0) * math.cos(angle), 0.5 * (length - 1.0) * math.sin(angle)
    start = (round((centre - dx) * _SHIFT_SCALE), round((centre - dy) * _SHIFT_SCALE))
    end = (round((centre + dx) * _SHIFT_SCALE), round((centre + dy) * _SHIFT_SCALE))
    cv2.line(canvas, start, end, 255, 1, cv2.LINE_AA, _SHIFT_BITS)
    kernel = canvas.astype(np.float32)
    return kernel / kernel.sum()


def clip_to_frame(
    x0: int, y0: int, patch_w: int, patch_h: int, frame_w: int, frame_h: int
) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Overlap of a patch placed at ``(x0, y0)`` with the frame.

    Returns ``(frame_slices, patch_slices)`` (rows, columns) or None when they do not overlap.
    """
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + patch_w, frame_w), min(y0 + patch_h, frame_h)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    return (
        (slice(fy0, fy1), slice(fx0, fx1)),
        (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)),
    )


def composite(frame: np.ndarray, x0: int, y0: int, patch: np.ndarray, hard: bool) -> None:
    """Paint a premultiplied RGBA patch (from :func:`place_sprite`) over a planar ``frame`` in place.

    ``hard``: paint only the patch's mask (alpha >= :data:`MASK_THRESHOLD`), so that the painted
    pixels are exactly those of the mask that ground truth is measured on; otherwise blend with the
    soft alpha (motion-blurred objects, background clutter).
    """
    overlap = clip_to_frame(x0, y0, patch.shape[1], patch.shape[0], frame.shape[2], frame.shape[1])
    if overlap is None:
        return
    (rows, cols), patch_slices = overlap
    *colours, alpha = cv2.split(patch[patch_slices])
    if hard:
        inside = (alpha >= MASK_THRESHOLD).astype(np.float32)
        alpha *= inside
        colours = [colour * inside for colour in colours]
    transparency = 1.0 - alpha
    for channel, colour in enumerate(colours):
        region = frame[channel, rows, cols]
        region *= transparency
        region += colour


def make_background(
    rng: np.random.Generator,
    height: int,
    width: int,
    clutter: int,
    blur_sigma: float,
    photo_prob: float = 0.0,
) -> np.ndarray:
    """(3, height, width) planar float32 cluttered background: a large-scale texture under ``clutter``
    shapes.

    ``blur_sigma`` (pixels, 0 for none) defocuses the result, as a background out of the focal plane.
    With probability ``photo_prob`` the large-scale texture is a crop of a real photograph and the
    clutter shapes (photo-textured too, with that probability) are half as many.
    """
    base_style = random_style(rng)
    base_style = ObjectStyle(
        texture=base_style.texture,
        shape=base_style.shape,
        colours=base_style.colours,
        period=base_style.period * rng.uniform(1.5, 4.0),
        angle=base_style.angle,
        hardness=min(base_style.hardness, 3.0),
        decals=0,
        outline=False,
    )
    if photo_prob > 0.0 and rng.random() < photo_prob:
        base_style = _photo_style(rng, base_style, 0.2, (0.4, 2.5))
        clutter //= 2
    background = np.ascontiguousarray(texture(rng, base_style, height, width).transpose(2, 0, 1))
    max_side = 0.45 * min(height, width)
    for _ in range(clutter):
        side = float(np.exp(rng.uniform(np.log(8.0), np.log(max_side))))
        aspect = float(np.exp(rng.uniform(np.log(0.3), np.log(3.3))))
        shape_w, shape_h = side * math.sqrt(aspect), side / math.sqrt(aspect)
        style = random_style(rng, photo_prob)
        sprite = make_sprite(rng, style, math.ceil(shape_w), math.ceil(shape_h))
        centre = (rng.uniform(0.0, width), rng.uniform(0.0, height))
        x0, y0, patch = place_sprite(sprite, centre, (shape_w, shape_h), rng.uniform(0.0, np.pi))
        composite(background, x0, y0, patch, hard=False)
    if blur_sigma > 0.0:
        for plane in background:
            cv2.GaussianBlur(plane, (0, 0), blur_sigma, dst=plane)
    return background


def finish_frame(
    frame: np.ndarray,
    gain: np.ndarray,
    offset: np.ndarray,
    ramp: np.ndarray | None,
    noise: np.ndarray | None,
) -> np.ndarray:
    """Apply illumination and sensor noise to a planar float32 frame (in place), quantise to uint8.

    Computes ``frame * gain + offset`` per channel (``gain``, ``offset``: (3,) arrays), times the
    spatial illumination ``ramp`` ((H, W) or None), plus ``noise`` ((3, H, W) or None), rounded to the
    nearest integer and clipped to 0..255. Returns the (H, W, 3) RGB uint8 image.
    """
    for channel in range(3):
        plane = frame[channel]
        plane *= np.float32(gain[channel])
        plane += np.float32(offset[channel])
    if ramp is not None:
        frame *= ramp
    if noise is not None:
        frame += noise
    channels, height, width = frame.shape
    # convertScaleAbs rounds and saturates at 255; negative values are cut to 0 first.
    flat = cv2.max(frame.reshape(channels * height, width), 0.0)
    planes = cv2.convertScaleAbs(flat).reshape(channels, height, width)
    return cv2.merge(list(planes))
