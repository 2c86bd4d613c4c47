"""Tracking speed: frames per second of the SiamFC tracker, device-only and end to end.

Rows:

- ``single``: one target, :func:`~siamfc_jax.tracker.step` of one slot per frame (what
  :class:`~siamfc_jax.tracker.Tracker` runs);
- ``batch N``: N targets in one :func:`~siamfc_jax.tracker.step` call of N slots per frame (what
  :class:`~siamfc_jax.tracker.BatchTracker` runs). The N targets are N copies of the sequence's
  first box in one shared frame, so every frame goes to the device once for all N;
- ``torch``: siamfc-pytorch's tracker path per frame (:class:`TorchTracker`), its network on the
  CPU or, with ``--torch-device cuda``, on the GPU as siamfc-pytorch runs it there: OpenCV
  crops at the three scales, the network of ``tests/torch_reference.py`` with the same weights
  (backbone on the three 255 x 255 crops, correlation with the cached exemplar), OpenCV bicubic
  upsampling and the peak search, in NumPy. Skipped when PyTorch is not installed.

Modes:

- ``device``: frames decoded beforehand (and, for ours, already on the device); the time of the
  update calls alone, with the result of the last frame waited for (the state chains the frames, so each waits
  for the one before);
- ``end-to-end``: per frame what ``Tracker.update`` does: decode the JPEG with OpenCV, send it to
  the device, update, fetch the box(es);
- ``loop`` (``single`` only): the host loop that ``track.py`` runs
  (:func:`~siamfc_jax.tracker.loop.track_jobs`): JPEGs decoded ahead in a thread, one step in
  flight while the previous box is read back; the sum of its per-frame seconds (the wall time
  between successive boxes).

Both start from the first frame (``init`` is not timed) and time ``--frames`` updates, after the
program was compiled and run once. ``--repeats`` rounds alternate all rows; the table gives medians.
GFLOP/s counts 16.3 GFLOP per target and frame (the backbone on three 255 x 255 crops; crops,
correlation and upsampling add under 1 %). ``compiles`` counts XLA compilations during the timed
runs (jax.monitoring), which must be 0: a tracker compiles once per frame size and number of targets.

Default data: ``../shared/siamfc/data/sequences/Crossing`` (OTB, 360 x 240) with siamfc-pytorch's
trained weights, or, where the shared folder is missing, the synthetic demo sequence (384 x 288)
with the packaged weights.

Usage::

    python -m benchmarks.track_speed [--frames N] [--batch-sizes 1,8,64]
        [--conv-impl auto|lax|...] [--compare-impl [IMPL,...]] [--precision highest|high|default]
        [--compute-dtype float32|bfloat16] [--repeats 3] [--torch-device cpu|cuda]
        [--sequence DIR --weights FILE]

``--compute-dtype bfloat16`` runs our backbone in bfloat16 (``TrackerConfig.compute_dtype``);
siamfc-pytorch's row stays float32. Before the last line, ``end to end / device only`` gives per
row (single: end to end and loop; batch N: end to end) the fraction of the device-only rate that
end-to-end tracking keeps.

The last line printed is ``fps_device=<single> fps_end_to_end=<single> fps_loop=<single>
ours_over_torch_device=<ratio> ours_over_torch=<ratio>``: single target, first convolution
formulation; the ratios divide our fps by siamfc-pytorch's, frames decoded beforehand and end to
end (``ours_over_torch``: what a user of ``track.py`` sees).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import flax
import jax
import numpy as np

from siamfc_jax.config import COMPUTE_DTYPES, TRACKER_PRECISIONS, TrackerConfig
from siamfc_jax.interop.torch_weights import WeightsError, flax_to_torch
from siamfc_jax.ops import conv
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.plans import CONV_IMPL_CHOICES, Workload, named_plan
from siamfc_jax.runtime import (
    available_cores,
    describe_allocator,
    describe_devices,
    setup_process,
)
from siamfc_jax.sequences.frames import DataError, average_color, read_image
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.synthetic.demo import ensure_demo_sequence
from siamfc_jax.tracker import (
    BatchTracker,
    Tracker,
    TrackerSpec,
    prepare_variables,
    start,
    step,
    tracker_spec,
)
from siamfc_jax.tracker.device import empty_states, hyper_params
from siamfc_jax.tracker.loop import Job, track_jobs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SEQUENCE = REPO / "../shared/siamfc/data/sequences/Crossing"
DEFAULT_WEIGHTS = REPO / "../shared/siamfc/weights/siamfc_original_v1.pth"
# AlexNetV1 on three 255 x 255 x 3 search crops: 5.44 GFLOP each (2 FLOP per multiply-add).
GFLOP_PER_TARGET_FRAME = 16.3
# The jax.monitoring event JAX records once per XLA compilation (jax._src.dispatch.BACKEND_COMPILE_EVENT).
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Names of the functions XLA compiled since the counter was made (from jax.monitoring)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        jax.monitoring.register_event_duration_secs_listener(self._record)

    def _record(self, event: str, duration: float, **kwargs: str | int) -> None:
        del duration
        if event == COMPILE_EVENT:
            self.names.append(str(kwargs.get("fun_name", "?")))

    def __len__(self) -> int:
        return len(self.names)


def convolution_count(lowered: jax.stages.Lowered) -> int:
    """Convolution ops in a lowered program: shows which formulation it was traced with."""
    return lowered.as_text().count("stablehlo.convolution")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what the platform module knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_lines() -> list[str]:
    """Date, machine, load and device lines for a benchmark's header."""
    cores = available_cores()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return [
        f"date: {datetime.date.today().isoformat()}",
        f"machine: {cpu_model()}, {cores} usable cores, load average {load} (1, 5, 15 min), "
        f"{platform.system()} {platform.release()}",
        describe_devices(),
        describe_allocator(),
        f"python {platform.python_version()}, jax {jax.__version__}, flax {flax.__version__}, "
        f"OpenCV {cv2.__version__}, NumPy {np.__version__}",
        f"command: {' '.join([Path(sys.executable).name, *sys.argv])}",
    ]


def positive_counts(text: str) -> list[int]:
    """``"1,8,64"`` -> [1, 8, 64] (sorted, unique, each >= 1)."""
    try:
        counts = sorted({int(value) for value in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"counts must be >= 1, got {text!r}")
    return counts


def conv_impls(requested: str, compare: Sequence[str] | None) -> list[str]:
    """The ``--conv-impl`` values to measure: ``requested`` (``auto``: the machine's plan) first, then
    those of ``compare`` (``--compare-impl``; empty: every fixed formulation) but that one."""
    first = requested
    if compare is None:
        return [first]
    return [first, *[impl for impl in (compare or conv.FORMULATIONS) if impl != first]]


def formulation_list(text: str) -> list[str]:
    """argparse type of ``--compare-impl``: comma-separated fixed formulations."""
    names = [name for name in text.split(",") if name]
    unknown = [name for name in names if name not in conv.FORMULATIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected formulations from {','.join(conv.FORMULATIONS)}, got {text!r}")
    return names


def add_compare_impl_argument(parser: argparse.ArgumentParser) -> None:
    """``--compare-impl [LIST]``: also time other formulations (all fixed ones, or those listed)."""
    parser.add_argument("--compare-impl", nargs="?", const=[], default=None, type=formulation_list,
                        metavar="IMPL,...",
                        help="also time other formulations: those listed, or every fixed one")


# ---------------------------------------------------------------------------------------------
# Tracking programs


@dataclasses.dataclass
class Program:
    """One row's compiled programs: ``targets`` None for ``single``, else ``batch N``.

    ``init(frame)`` starts the row's target(s) in a (1, H, W, 3) frame on the device and returns
    the slots' states; ``update(states, frame)`` is the compiled tracking step (the states are
    donated) returning ``(states, boxes)``, on the weights prepared for ``impl``
    (:func:`prepare_variables`), as a tracker of that formulation runs.
    """

    impl: str
    targets: int | None
    init: Callable[[jax.Array], object]
    update: Callable
    convolutions: int
    spec: TrackerSpec

    @property
    def label(self) -> str:
        return "single" if self.targets is None else f"batch {self.targets}"

    @property
    def target_count(self) -> int:
        return 1 if self.targets is None else self.targets


def compile_program(
    tracker: Tracker, first_frame: np.ndarray, box: np.ndarray, impl: str, plan: ConvPlan, targets: int | None
) -> Program:
    """Compile the tracker's start and step for ``targets`` (None: single) with ``plan`` (of the
    ``--conv-impl`` value ``impl``), and run the step once, so that timed runs start warm."""
    spec = tracker_spec(tracker.config, tracker.model_config, plan)
    variables = prepare_variables(tracker.variables, spec)
    count = 1 if targets is None else targets
    image = jax.device_put(first_frame[None])
    box = jax.device_put(box.astype(np.float32))
    # siamfc-pytorch's border colour (the first frame's mean), rounded as Tracker.init rounds it.
    fill = jax.device_put(np.rint(average_color(first_frame)).astype(np.float32))
    frame_hw = jax.device_put(np.asarray(first_frame.shape[:2], np.float32))
    hyper = jax.device_put(jax.tree.map(lambda leaf: np.stack([leaf] * count), hyper_params(tracker.config)))
    frame_of_slot = jax.device_put(np.zeros(count, np.int32))

    def init(frame: jax.Array):
        states = empty_states(count, spec)
        for slot in range(count):
            states = start(variables, states, np.int32(slot), frame[0], box, fill, frame_hw, spec=spec)
        return states

    lowered = step.lower(variables, init(image), image, frame_of_slot, hyper, spec=spec)
    compiled = lowered.compile()

    def update(states, frame: jax.Array):
        states, boxes, _ = compiled(variables, states, frame, frame_of_slot, hyper)
        return states, boxes

    jax.block_until_ready(update(init(image), image))
    return Program(impl, targets, init, update, convolution_count(lowered), spec)


def time_device(program: Program, frames: Sequence[jax.Array]) -> float:
    """Seconds for the updates on ``frames[1:]`` (on the device), after an untimed init on ``frames[0]``."""
    state = jax.block_until_ready(program.init(frames[0]))
    boxes = []
    start_time = time.perf_counter()
    for frame in frames[1:]:
        state, box = program.update(state, frame)
        boxes.append(box)
    jax.block_until_ready(boxes)
    return time.perf_counter() - start_time


def time_end_to_end(program: Program, paths: Sequence[str]) -> float:
    """Seconds to decode, send, update and fetch ``paths[1:]``, after an untimed init on ``paths[0]``."""
    state = jax.block_until_ready(program.init(jax.device_put(read_image(paths[0])[None])))
    start_time = time.perf_counter()
    for path in paths[1:]:
        state, box = program.update(state, jax.device_put(read_image(path)[None]))
        np.asarray(jax.device_get(box), np.float64)  # the host gets every box, as from Tracker.update
    return time.perf_counter() - start_time


def time_loop(program: Program, variables: dict, paths: Sequence[str], box: np.ndarray) -> float:
    """Seconds between the host loop's boxes for ``paths[1:]``, after its start on ``paths[0]``."""
    first = read_image(paths[0])
    job = Job(
        frames=lambda: (read_image(path) for path in paths),
        boxes=box[None],
        hyper=hyper_params(program.spec.config),
        frame_size=(first.shape[1], first.shape[0]),
        num_frames=len(paths),
    )
    (done,) = track_jobs(variables, program.spec, [job], warm_up=False)
    return float(np.sum(done.times[1:]))


def check_compilations(weights: str | Path | None, paths: Sequence[str], box: np.ndarray) -> str:
    """What ``Tracker.track`` and a ``BatchTracker`` of 2 targets compile over ``paths``."""
    counter = CompileCounter()
    Tracker(weights).track(paths, box)
    single = len(counter)
    batch = BatchTracker(weights)
    batch.init(paths[0], np.tile(box, (2, 1)))
    for path in paths[1:]:
        batch.update(path)
    names = collections.Counter(counter.names)
    listed = ", ".join(f"{name} x{count}" for name, count in sorted(names.items()))
    return (f"XLA compilations over {len(paths)} frames with the public classes: Tracker.track {single}, "
            f"BatchTracker (2 targets) {len(counter) - single} ({listed})")


# ---------------------------------------------------------------------------------------------
# PyTorch reference


def add_torch_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--torch-device cpu|cuda``: where siamfc-pytorch's network runs (it uses the GPU when it has one)."""
    parser.add_argument("--torch-device", choices=("cpu", "cuda"), default="cpu",
                        help="device of the PyTorch rows' network (default cpu)")


def torch_device_line(torch, device: str, threads: int) -> str:
    """Where the PyTorch rows ran, for the report: the GPU's name, or the CPU threads."""
    if device == "cuda":
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU, {threads} threads"


def check_torch_device(torch, device: str) -> None:
    """Raise :class:`DataError` where ``--torch-device`` names a device PyTorch cannot use."""
    if device == "cuda" and not torch.cuda.is_available():
        raise DataError("--torch-device cuda: this PyTorch sees no CUDA device")


def load_torch_reference():
    """``(torch, the tests/torch_reference.py module)``, or None without PyTorch."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    spec = importlib.util.spec_from_file_location("torch_reference", REPO / "tests" / "torch_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return torch, module


class TorchTracker:
    """siamfc-pytorch's per-frame tracking path, for timing: its crops, network and post-processing.

    The network is ``tests/torch_reference.py``'s with the tracker's weights. :meth:`update` does
    what siamfc-pytorch's ``TrackerSiamFC.update`` does per frame: for each of the scales, pad the
    frame with the first frame's mean colour where the search square leaves it
    (``cv2.copyMakeBorder``), cut the square and ``cv2.resize`` it to 255 (INTER_LINEAR); run the
    backbone on the stacked crops and correlate them with the cached exemplar features; upsample
    the responses with ``cv2.resize`` (INTER_CUBIC); penalise, normalise, add the cosine window, take
    the peak and move the target. The state has siamfc-pytorch's NumPy types (centre and size
    float32 arrays updated in place, the crop sides float32 until the first update), so that its
    boxes are siamfc-pytorch's (``benchmarks.gpu_drift`` compares them with the stored ones).
    """

    def __init__(self, torch, net, config, first_frame: np.ndarray, box: np.ndarray, threads: int,
                 device: str = "cpu"):
        self.torch, self.net, self.config, self.device = torch, net, config, device
        torch.set_num_threads(threads)
        x, y, w, h = box
        # [y, x, h, w], 0-indexed centre, float32 as siamfc-pytorch's init makes it.
        state = np.array([y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2, h, w], np.float32)
        self.center, self.size = state[:2], state[2:]
        context = config.context * np.sum(self.size)
        self.exemplar_side = np.sqrt(np.prod(self.size + context))
        self.search_side = self.exemplar_side * config.instance_sz / config.exemplar_sz
        self.fill = np.mean(first_frame, axis=(0, 1))
        half = config.scale_num // 2
        self.factors = config.scale_step ** np.linspace(-half, half, config.scale_num)
        hann = np.outer(np.hanning(config.upscale_sz), np.hanning(config.upscale_sz))
        self.window = hann / hann.sum()
        exemplar = self.crop(first_frame, self.exemplar_side, config.exemplar_sz)
        with torch.no_grad():
            self.kernel = net.backbone(self.tensor([exemplar]))

    def crop(self, frame: np.ndarray, side: float, out_size: int) -> np.ndarray:
        """The ``side``-pixel square around the target in ``frame``, resized to ``out_size`` (uint8)."""
        side = round(side)
        top, left = np.round(self.center - (side - 1) / 2).astype(int)
        bottom, right = top + side, left + side
        pad = max(0, -top, -left, bottom - frame.shape[0], right - frame.shape[1])
        if pad:
            frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                       value=self.fill.tolist())
        patch = frame[top + pad : bottom + pad, left + pad : right + pad]
        return cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)

    def tensor(self, crops: list[np.ndarray]):
        """The crops as the network's input on its device: (n, 3, H, W) float32, in NHWC memory
        order (siamfc-pytorch sends the uint8 crops and converts them there)."""
        return self.torch.from_numpy(np.stack(crops)).to(self.device).permute(0, 3, 1, 2).float()

    def search_crops(self, frame: np.ndarray) -> list[np.ndarray]:
        """The search crops of ``frame`` at every scale, (instance_sz, instance_sz, 3) uint8 each."""
        return [self.crop(frame, self.search_side * f, self.config.instance_sz) for f in self.factors]

    def update(self, frame: np.ndarray) -> np.ndarray:
        """Track into ``frame`` (H, W, 3) RGB uint8; returns the 1-indexed [x, y, w, h] box."""
        config = self.config
        with self.torch.no_grad():
            responses = self.net.head(self.kernel, self.net.backbone(self.tensor(self.search_crops(frame))))
        responses = responses.squeeze(1).cpu().numpy()
        up = config.upscale_sz
        responses = np.stack([cv2.resize(r, (up, up), interpolation=cv2.INTER_CUBIC) for r in responses])
        # float32 times a Python float, as siamfc-pytorch penalises the other scales' slices.
        half = config.scale_num // 2
        responses[:half] *= config.scale_penalty
        responses[half + 1 :] *= config.scale_penalty
        scale_id = int(np.argmax(np.amax(responses, axis=(1, 2))))
        response = responses[scale_id] - responses[scale_id].min()
        response /= response.sum() + 1e-16
        response = (1 - config.window_influence) * response + config.window_influence * self.window
        peak = np.array(np.unravel_index(response.argmax(), response.shape), np.float64)
        offset = (peak - (up - 1) / 2) * config.total_stride / config.response_up
        self.center += offset * self.search_side * self.factors[scale_id] / config.instance_sz
        scale = (1 - config.scale_lr) + config.scale_lr * self.factors[scale_id]
        self.size *= scale
        self.exemplar_side *= scale
        self.search_side *= scale
        return np.array([self.center[1] + 1 - (self.size[1] - 1) / 2,
                         self.center[0] + 1 - (self.size[0] - 1) / 2, self.size[1], self.size[0]])


def torch_tracking(tracker: Tracker, first_frame: np.ndarray, box: np.ndarray, threads: int,
                   device: str = "cpu"):
    """``(make, torch version, device line)``: ``make()`` starts a :class:`TorchTracker` on the first
    frame with ``tracker``'s weights and config, its network on ``device``; None without PyTorch."""
    loaded = load_torch_reference()
    if loaded is None:
        return None
    torch, reference = loaded
    check_torch_device(torch, device)
    net = reference.TorchNet(tracker.model_config.backbone, tracker.model_config.out_scale).eval()
    state = {key: torch.from_numpy(np.array(value)) for key, value in flax_to_torch(
        jax.device_get(tracker.variables)).items()}
    net.load_state_dict(state)
    net.to(device)

    def make() -> TorchTracker:
        return TorchTracker(torch, net, tracker.config, first_frame, box, threads, device)

    make().update(first_frame)  # first call: allocations, kernel selection
    return make, torch.__version__, torch_device_line(torch, device, threads)


def time_torch(make: Callable[[], TorchTracker], frames: Sequence[np.ndarray] | None,
               paths: Sequence[str]) -> float:
    """Seconds of the updates on ``frames[1:]`` (decoded beforehand) or, with ``frames`` None, on
    ``paths[1:]`` decoded by OpenCV per frame; the start on the first frame is not timed."""
    torch_tracker = make()
    start = time.perf_counter()
    for index in range(1, len(paths)):
        torch_tracker.update(read_image(paths[index]) if frames is None else frames[index])
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Main


def open_data(sequence: Path | None, weights: Path | None, cache_dir: Path) -> tuple[Path, Path | None, str]:
    """The sequence folder, weights (None: packaged) and a description of both.

    Unset, they are the shared Crossing sequence and siamfc-pytorch's weights, or where those are
    missing the synthetic demo sequence (generated into ``cache_dir``) and the packaged weights.
    """
    if sequence is None:
        sequence = DEFAULT_SEQUENCE if DEFAULT_SEQUENCE.is_dir() else ensure_demo_sequence(cache_dir)
    if weights is None and DEFAULT_WEIGHTS.is_file():
        weights = DEFAULT_WEIGHTS
    described = "packaged weights" if weights is None else f"weights {weights.resolve().name}"
    return sequence, weights, f"sequence {sequence.resolve().name}, {described}"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table."""

    impl: str
    label: str
    mode: str
    targets: int


def run(args: argparse.Namespace) -> int:
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "siamfc_jax"
    sequence_dir, weights, data_note = open_data(args.sequence, args.weights, default_cache / "track_speed")
    sequence = open_sequence(sequence_dir)
    if len(sequence.frames) < 2:
        raise DataError(f"{sequence_dir}: needs at least 2 image frames")
    on_cpu = jax.default_backend() == "cpu"
    batch_sizes = args.batch_sizes or ([1, 8] if on_cpu else [1, 8, 64])
    updates = min(args.frames or (3 if on_cpu else len(sequence.frames)), len(sequence.frames) - 1)
    repeats = args.repeats or (2 if on_cpu else 3)
    paths = sequence.frames[: updates + 1]
    box = np.asarray(sequence.init_box, np.float64)
    impls = conv_impls(args.conv_impl, args.compare_impl)

    compile_note = check_compilations(weights, paths[:3], box)
    started = time.perf_counter()
    precision = {} if args.precision is None else {"precision": args.precision}
    tracker = Tracker(weights, TrackerConfig(**precision, compute_dtype=args.compute_dtype))
    frames = [jax.device_put(read_image(path)[None]) for path in paths]
    first = read_image(paths[0])
    torch_run = None if args.no_torch else torch_tracking(
        tracker, first, box, args.torch_threads, args.torch_device)
    counter = CompileCounter()
    workload = Workload.tracking(tracker.config)
    plans = {impl: named_plan(impl, tracker.model_config, workload) for impl in impls}
    programs = [
        compile_program(tracker, first, box, impl, plans[impl], targets)
        for impl in impls
        for targets in [None, *batch_sizes]
    ]
    for program in programs:
        if program.targets is None:
            time_loop(program, tracker.variables, paths[:2], box)  # compiles the loop's calls
    print(f"compiled {len(programs)} programs ({len(counter)} XLA compilations) in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    host_frames = [read_image(path) for path in paths]

    seconds: dict[Row, list[float]] = collections.defaultdict(list)
    compiles: dict[Row, int] = collections.Counter()
    for repeat in range(repeats):
        for program in programs:
            for mode in ("device", "end-to-end", "loop")[: 3 if program.targets is None else 2]:
                row = Row(program.impl, program.label, mode, program.target_count)
                before = len(counter)
                if mode == "device":
                    elapsed = time_device(program, frames)
                elif mode == "end-to-end":
                    elapsed = time_end_to_end(program, paths)
                else:
                    elapsed = time_loop(program, tracker.variables, paths, box)
                compiles[row] += len(counter) - before
                seconds[row].append(elapsed)
                print(f"repeat {repeat + 1}/{repeats}: {program.impl:>6} {program.label:>9} "
                      f"{mode:>10} {updates / elapsed:8.2f} fps", flush=True)
        if torch_run is not None:
            for mode in ("device", "end-to-end"):
                row = Row("torch", "single", mode, 1)
                seconds[row].append(time_torch(torch_run[0], host_frames if mode == "device" else None,
                                               paths))
                print(f"repeat {repeat + 1}/{repeats}:  torch    single {mode:>10} "
                      f"{updates / seconds[row][-1]:8.2f} fps", flush=True)

    print()
    for line in machine_lines():
        print(line)
    if torch_run is not None:
        print(f"torch {torch_run[1]} ({torch_run[2]}): siamfc-pytorch's tracker path "
              f"(OpenCV crops at {tracker.config.scale_num} scales, network, OpenCV upsampling, peak) "
              f"with the same weights and frames")
    print(f"data: {data_note}; {sequence.frame_size[0]}x{sequence.frame_size[1]} frames; "
          f"precision {tracker.config.precision}, compute dtype {tracker.config.compute_dtype}; "
          f"{updates} timed updates per run, medians of {repeats} runs")
    print(f"batched rows: N copies of the first box in one shared frame; "
          f"{GFLOP_PER_TARGET_FRAME} GFLOP per target-frame")
    print(compile_note)
    convs = ", ".join(f"{p.impl} {p.label}: {p.convolutions}" for p in programs)
    print(f"convolution ops per update program (lax: 5 backbone + 1 correlation; matmul, shift and rows: "
          f"the correlation only; auto: those of the formulations chosen): {convs}")
    print()
    header = (f"{'impl':>6} | {'targets':>9} | {'mode':>10} | {'fps':>8} | {'target-frames/s':>15} | "
              f"{'GFLOP/s':>8} | {'compiles':>8}")
    print(header)
    print("-+-".join("-" * len(part) for part in header.split(" | ")))
    fps: dict[Row, float] = {}
    for row, times in seconds.items():
        fps[row] = updates / statistics.median(times)
        rate = fps[row] * row.targets
        compiled = str(compiles[row]) if row.impl != "torch" else "-"
        print(f"{row.impl:>6} | {row.label:>9} | {row.mode:>10} | {fps[row]:>8.2f} | {rate:>15.2f} | "
              f"{rate * GFLOP_PER_TARGET_FRAME:>8.1f} | {compiled:>8}")

    if len(impls) > 1:
        print()
        print(f"fps of the other formulations / {impls[0]}:")
        for row, value in fps.items():
            if row.impl == impls[0]:
                others = ", ".join(f"{impl} {fps[dataclasses.replace(row, impl=impl)] / value:.2f}"
                                   for impl in impls[1:])
                print(f"  {row.label:>9} {row.mode:>10}: {others}")
    print()
    print(f"end to end / device only ({impls[0]}):")
    for row, value in fps.items():
        if row.impl == impls[0] and row.mode != "device":
            device = fps[dataclasses.replace(row, mode="device")]
            print(f"  {row.label:>9} {row.mode:>10}: {value / device:.2f} "
                  f"({value:.2f} against {device:.2f} fps)")
    single_device = fps[Row(impls[0], "single", "device", 1)]
    single_end = fps[Row(impls[0], "single", "end-to-end", 1)]
    ratios = {"device": "nan", "end-to-end": "nan"}
    if torch_run is not None:
        print()
        for mode in ratios:
            ours, theirs = fps[Row(impls[0], "single", mode, 1)], fps[Row("torch", "single", mode, 1)]
            ratios[mode] = f"{ours / theirs:.2f}"
            print(f"ours ({impls[0]}, single, {mode}) / siamfc-pytorch's tracker path: {ratios[mode]}")
    single_loop = fps[Row(impls[0], "single", "loop", 1)]
    print(f"fps_device={single_device:.2f} fps_end_to_end={single_end:.2f} fps_loop={single_loop:.2f} "
          f"ours_over_torch_device={ratios['device']} ours_over_torch={ratios['end-to-end']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequence", type=Path,
                        help="sequence folder (default: shared Crossing, else the synthetic demo)")
    parser.add_argument("--weights", type=Path,
                        help="weights file (default: shared siamfc-pytorch weights, else the packaged ones)")
    parser.add_argument("--frames", type=int, default=None,
                        help="timed updates per run (default: 3 on CPU, the whole sequence elsewhere)")
    parser.add_argument("--batch-sizes", type=positive_counts, default=None,
                        help="targets per batched call, comma-separated (default: 1,8 on CPU, else 1,8,64)")
    parser.add_argument("--conv-impl", choices=CONV_IMPL_CHOICES, default="auto",
                        help="auto (default): this machine's tracking plan; or one formulation everywhere")
    add_compare_impl_argument(parser)
    parser.add_argument("--precision", choices=TRACKER_PRECISIONS, default=None,
                        help="the tracker's matmul precision (default: the tracker's, highest; "
                             "on GPUs default means TF32)")
    parser.add_argument("--compute-dtype", choices=COMPUTE_DTYPES, default="float32",
                        help="our backbone's compute type (default float32)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per row (default: 2 on CPU, else 3)")
    parser.add_argument("--torch-threads", type=int, default=2)
    add_torch_device_argument(parser)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch row")
    args = parser.parse_args(argv)
    if args.frames is not None and args.frames < 1:
        parser.error("--frames must be >= 1")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    try:
        return run(args)
    except (DataError, WeightsError) as error:
        print(f"track_speed: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    setup_process(compilation_cache=False)  # as track.py runs; the restart repeats the imports above
    sys.exit(main())
