"""Track with the ONNX networks of ``python -m siamfc_jax.export WEIGHTS OUT --format onnx``.

Needs onnxruntime, OpenCV and NumPy only (not siamfc_jax or JAX): the SiamFC tracking logic around
the two networks, with the settings from ``siamfc_onnx.json``. Prints one ``x,y,w,h`` per frame:

    python docs/examples/track_onnx.py OUT 'Crossing/img/*.jpg' 205,151,17,50 > boxes.txt
"""

import glob
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

folder, pattern, first_box = sys.argv[1:4]
cfg = json.loads(Path(folder, "siamfc_onnx.json").read_text())["tracker"]
embed = ort.InferenceSession(f"{folder}/embed.onnx", providers=["CPUExecutionProvider"])
head = ort.InferenceSession(f"{folder}/head.onnx", providers=["CPUExecutionProvider"])
up = cfg["response_sz"] * cfg["response_up"]
window = np.outer(np.hanning(up), np.hanning(up))
window /= window.sum()
half = cfg["scale_num"] // 2
factors = cfg["scale_step"] ** np.linspace(-half, half, cfg["scale_num"])
penalties = np.where(np.arange(cfg["scale_num"]) == half, 1.0, cfg["scale_penalty"])[:, None, None]


def crop(frame, center, size, out, fill):
    """Square of side ``size`` around ``center`` [y, x], outside pixels ``fill``, resized to ``out``."""
    side = max(int(np.round(size)), 1)
    top, left = np.round(center - (side - 1) / 2).astype(int)
    pad = max(0, -top, -left, top + side - frame.shape[0], left + side - frame.shape[1])
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill.tolist())
    patch = padded[top + pad : top + pad + side, left + pad : left + pad + side]
    return cv2.resize(patch, (out, out), interpolation=cv2.INTER_LINEAR).astype(np.float32)


x, y, w, h = (float(value) for value in first_box.split(","))
for index, path in enumerate(sorted(glob.glob(pattern))):
    frame = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    if index == 0:
        center, size = np.array([y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2]), np.array([h, w])
        exemplar_crop = np.sqrt(np.prod(size + cfg["context"] * size.sum()))
        search_crop = exemplar_crop * cfg["instance_sz"] / cfg["exemplar_sz"]
        fill = np.rint(frame.mean(axis=(0, 1)))
        z = crop(frame, center, exemplar_crop, cfg["exemplar_sz"], fill)
        kernel = embed.run(None, {"images": z[None]})[0]
    else:
        searches = np.stack([crop(frame, center, search_crop * f, cfg["instance_sz"], fill) for f in factors])
        features = embed.run(None, {"images": searches})[0]
        responses = head.run(None, {"exemplar_features": kernel, "search_features": features})[0]
        responses = np.stack([cv2.resize(r, (up, up), interpolation=cv2.INTER_CUBIC) for r in responses])
        responses *= penalties
        best = int(np.argmax(responses.max(axis=(1, 2))))
        response = responses[best] - responses[best].min()
        response = (1 - cfg["window_influence"]) * response / (response.sum() + 1e-16)
        response += cfg["window_influence"] * window
        peak = np.array(np.unravel_index(np.argmax(response), response.shape), np.float64)
        shift = (peak - (up - 1) / 2) * cfg["total_stride"] / cfg["response_up"]
        center = center + shift * search_crop * factors[best] / cfg["instance_sz"]
        scale = 1 - cfg["scale_lr"] + cfg["scale_lr"] * factors[best]
        size, exemplar_crop, search_crop = size * scale, exemplar_crop * scale, search_crop * scale
    box = [center[1] + 1 - (size[1] - 1) / 2, center[0] + 1 - (size[0] - 1) / 2, size[1], size[0]]
    print(",".join(f"{value:.4f}" for value in box))
