"""Success AUC and precision of weights files on real video: the validation folder and the two
shared sequences.

Usage::

    python -m benchmarks.weights_accuracy WEIGHTS [WEIGHTS ...] [--sets SETS] [--json FILE]
        [--compute-dtype bfloat16] [--sequences N]

``WEIGHTS`` are weights files (``.pth`` or ours), ``packaged`` (the weights that ship with
siamfc_jax), ``original`` (the original SiamFC net in ``../shared/siamfc/weights``) or
``untrained`` (AlexNetV1 freshly initialised with seed 0). Every weights file tracks the 12
sequences of ``../shared/siamfc/data/validation`` (real aerial and ground-level video, never trained
on) and OTB *Crossing* and VOT *bag* from ``../shared/siamfc/data/sequences``, one-pass from the
first box, with siamfc-pytorch's default tracker settings. Frames whose ground truth is ``NaN``
(target absent) are not scored.

``--sets shared`` tracks only the two shared sequences (a one-minute check). Prints a line per
sequence as it finishes, one row per weights file and set (mean success AUC and mean precision at
20 px over the set's sequences), then the per-sequence AUC; ``--json`` also writes every figure
(rewritten after each weights file). ``--compute-dtype bfloat16`` tracks with the backbone in
bfloat16 (``TrackerConfig.compute_dtype``); ``--sequences N`` keeps the first N sequences of each set.
About 10 minutes per weights file on an idle 2-core CPU (3,462 frames).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

from siamfc_jax.config import COMPUTE_DTYPES, ModelConfig, TrackerConfig
from siamfc_jax.evaluation.tracking import track_sequence
from siamfc_jax.files import write_text_atomic
from siamfc_jax.models import init_variables
from siamfc_jax.runtime import describe_devices, setup_process
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker

SHARED = Path(__file__).resolve().parents[2] / "shared" / "siamfc"
VALIDATION = SHARED / "data" / "validation"
SHARED_SEQUENCES = ("Crossing", "bag")
ORIGINAL = SHARED / "weights" / "siamfc_original_v1.pth"


def _tracker(weights: str, config: TrackerConfig) -> Tracker:
    if weights == "untrained":
        return Tracker((init_variables(ModelConfig(), jax.random.key(0)), ModelConfig()), config)
    if weights == "packaged":
        return Tracker(None, config)
    if weights == "original":
        return Tracker(str(ORIGINAL), config)
    return Tracker(weights, config)


def evaluate_weights(
    weights: str, sets: dict[str, list], config: TrackerConfig = TrackerConfig()
) -> dict[str, dict[str, dict[str, float]]]:
    """``{set: {sequence: {"auc": …, "precision": …}}}`` of tracking every sequence with ``weights``
    and the tracker settings ``config`` (a line per sequence on stderr as it finishes)."""
    tracker = _tracker(weights, config)
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for set_name, sequences in sets.items():
        figures[set_name] = {}
        for sequence in sequences:
            scores = track_sequence(tracker, sequence, progress=False).scores
            figures[set_name][sequence.name] = {
                "auc": float(scores["auc"]),
                "precision": float(scores["precision"]),
            }
            print(f"  {weights}: {sequence.name} AUC {scores['auc']:.3f}", file=sys.stderr, flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help="weights files, or packaged, original, untrained")
    parser.add_argument(
        "--sets",
        default="validation,shared",
        help="comma-separated: validation (the 12 sequences), shared (Crossing and bag)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument(
        "--compute-dtype",
        choices=COMPUTE_DTYPES,
        default="float32",
        help="the backbone's compute type while tracking (default float32)",
    )
    parser.add_argument(
        "--sequences", type=int, default=None, help="track only the first N (>= 1) sequences of each set"
    )
    args = parser.parse_args(argv)
    for weights in args.weights:
        if weights not in ("packaged", "original", "untrained") and not Path(weights).is_file():
            parser.error(f"{weights}: no such weights file")
    needed = [VALIDATION, ORIGINAL, *(SHARED / "data" / "sequences" / n for n in SHARED_SEQUENCES)]
    missing = [path for path in needed if not path.exists()]
    if missing:
        parser.error(f"{missing[0]}: missing (../shared must sit beside the checkout)")
    if args.json is not None and args.json.exists():
        parser.error(f"--json {args.json}: exists; choose another file")
    print(describe_devices())

    chosen = set(args.sets.split(","))
    if not chosen or not chosen <= {"validation", "shared"}:
        parser.error(f"--sets {args.sets}: expected validation, shared or both")
    if args.sequences is not None and args.sequences < 1:
        parser.error(f"--sequences {args.sequences}: expected at least 1")
    sets = {}
    if "validation" in chosen:
        validation = list(SequenceFolder(VALIDATION))[: args.sequences]
        sets[f"validation ({len(validation)})"] = validation
    if "shared" in chosen:
        shared = [open_sequence(SHARED / "data" / "sequences" / n) for n in SHARED_SEQUENCES]
        sets["Crossing + bag"] = shared[: args.sequences]
    config = TrackerConfig(compute_dtype=args.compute_dtype)
    print(f"compute dtype: {args.compute_dtype}")
    results = {}
    print(f"{'weights':48s} {'set':16s} {'AUC':>6s} {'prec.':>6s}")
    for weights in args.weights:
        results[weights] = evaluate_weights(weights, sets, config)
        for set_name, per_sequence in results[weights].items():
            aucs = [f["auc"] for f in per_sequence.values()]
            precisions = [f["precision"] for f in per_sequence.values()]
            print(f"{weights:48s} {set_name:16s} {np.mean(aucs):6.3f} {np.mean(precisions):6.3f}", flush=True)
        if args.json is not None:  # after every weights file, so an interrupted run keeps what it did
            write_text_atomic(args.json, json.dumps(results, indent=1) + "\n")
    names = [s.name for group in sets.values() for s in group]
    print("\nper-sequence AUC")
    print(f"{'sequence':18s} " + " ".join(f"{w[-14:]:>14s}" for w in args.weights))
    for name in names:
        row = [next(f[name]["auc"] for f in results[w].values() if name in f) for w in args.weights]
        print(f"{name:18s} " + " ".join(f"{value:14.3f}" for value in row))
    return 0


if __name__ == "__main__":
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    sys.exit(main())
