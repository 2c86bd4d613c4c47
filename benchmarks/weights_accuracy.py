"""Success AUC of weights files on the demo sequence, held-out synthetic sequences and real ones.

Usage::

    python -m benchmarks.weights_accuracy --synthetic-root DIR WEIGHTS [WEIGHTS ...]

``WEIGHTS`` are weights files (``.pth`` or ours) or ``untrained`` (a freshly initialised
AlexNetV1). ``--synthetic-root`` is a GOT-10k-layout root of synthetic sequences whose ``val`` split
the weights were not trained on (``train.py`` generates one under
``<data-dir>/downloads/siamfc_synthetic_<fingerprint>``); its validation sequences 4 to 13 are
used, the first three being the ones ``train.py`` tracks during training. The real sequences are
OTB *Crossing* and VOT *bag* from ``../shared``. Prints one row per weights file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

from siamfc_jax.config import ModelConfig
from siamfc_jax.evaluation.metrics import evaluate
from siamfc_jax.models import init_variables
from siamfc_jax.runtime import describe_devices, select_platform
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.synthetic.demo import ensure_demo_sequence
from siamfc_jax.tracker import Tracker

SHARED_SEQUENCES = Path(__file__).resolve().parents[2] / "shared" / "siamfc" / "data" / "sequences"


def main(argv: list[str] | None = None) -> int:
    select_platform()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help="weights files, or 'untrained'")
    parser.add_argument("--synthetic-root", type=Path, required=True, help="root with a val/ split")
    parser.add_argument("--demo-dir", type=Path, default=Path("outputs/demo_sequence"))
    args = parser.parse_args(argv)
    print(describe_devices())

    sequences = {"demo": ensure_demo_sequence(args.demo_dir)}
    held_out = sorted(p for p in (args.synthetic_root / "val").iterdir() if p.is_dir())[3:13]
    if not held_out:
        parser.error(f"--synthetic-root {args.synthetic_root}: no sequences in its val/ folder")
    sequences.update((path.name, path) for path in held_out)
    for name in ("Crossing", "bag"):
        if (SHARED_SEQUENCES / name).is_dir():
            sequences[name] = SHARED_SEQUENCES / name

    print(f"{'weights':60s} {'demo':>6s} {'synthetic (10)':>14s} {'Crossing':>9s} {'bag':>9s}")
    for weights in args.weights:
        if weights == "untrained":
            tracker = Tracker((init_variables(ModelConfig(), jax.random.key(0)), ModelConfig()))
        else:
            tracker = Tracker(weights)
        auc = {}
        for name, path in sequences.items():
            sequence = open_sequence(path)
            boxes, _ = tracker.track(sequence.frames, sequence.init_box)
            auc[name] = evaluate(boxes, sequence.boxes, sequence.absence)["auc"]
        synthetic = float(np.mean([auc[path.name] for path in held_out]))
        real = [f"{auc[name]:9.4f}" if name in auc else f"{'-':>9s}" for name in ("Crossing", "bag")]
        print(f"{weights:60s} {auc['demo']:6.4f} {synthetic:14.4f} {real[0]} {real[1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
