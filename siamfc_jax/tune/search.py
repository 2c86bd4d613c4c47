"""Hyper-parameter search: many tracker configs on a folder of sequences, as one batched run (host).

A search is a list of *candidates*, each a dict of :class:`~siamfc_jax.config.TrackerConfig`
values applied to a base config: the product of a grid (:func:`grid_candidates`) or random draws
from ranges (:func:`random_candidates`, seeded, so a rerun draws the same). Every (candidate,
sequence) pair is a job of :func:`~siamfc_jax.evaluation.tracking.track_sequences`: the fields of
:data:`~siamfc_jax.tracker.device.TRACED_FIELDS` are traced values, so candidates differing only
in those share one compiled step and move through it together; candidates differing in a shape
field (``response_up``, ``scale_num``, crop sizes, ``context``) are run group after group, one
compilation each.

Files in the output folder: ``tune.json`` (the settings and every finished (candidate, sequence)
score), ``tune.md`` (candidates sorted by success AUC, with precision) and ``best_config.json`` (the
best complete candidate as a config file for ``track.py --config``), rewritten after each finished
candidate. Ctrl-C writes them and stops; the same command again continues where it stopped, and
a larger grid over the same sequences reuses what is done.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from siamfc_jax.config import ConfigError, ModelConfig, TrackerConfig
from siamfc_jax.evaluation.tracking import SequenceJob, track_sequences
from siamfc_jax.files import check_writable_dir, write_text_atomic
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker.device import fit_config, hyper_params, static_config, tracker_spec
from siamfc_jax.tune.config_file import config_values, write_config_file

# Fields a search may vary (the network's own geometry and the numerics are not tuned).
SEARCHABLE_FIELDS = (
    "window_influence",
    "scale_penalty",
    "scale_lr",
    "scale_step",
    "response_up",
    "scale_num",
    "context",
    "exemplar_sz",
    "instance_sz",
)
_INTEGER_FIELDS = {"response_up", "scale_num", "exemplar_sz", "instance_sz"}
RESULTS_NAME = "tune.json"
TABLE_NAME = "tune.md"
BEST_NAME = "best_config.json"


class SearchError(ValueError):
    """A bad search specification or an output folder holding another search; one line."""


def _field(name: str, argument: str) -> str:
    if name not in SEARCHABLE_FIELDS:
        raise SearchError(
            f"argument {argument}: {name!r} cannot be searched; choose from {', '.join(SEARCHABLE_FIELDS)}"
        )
    return name


def _number(name: str, text: str, argument: str) -> float | int:
    try:
        return int(text) if name in _INTEGER_FIELDS else float(text)
    except ValueError:
        kind = "an integer" if name in _INTEGER_FIELDS else "a number"
        raise SearchError(f"argument {argument}: {name} needs {kind}, got {text!r}") from None


def parse_grid(specs: list[str]) -> dict[str, list]:
    """``["window_influence=0.1,0.2", "scale_lr=0.5,0.6"]`` -> field -> values."""
    grid: dict[str, list] = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        name = _field(name.strip(), "--grid")
        parts = [part for part in values.split(",") if part.strip()]
        if not parts:
            raise SearchError(f"argument --grid: expected FIELD=V1,V2,..., got {spec!r}")
        grid[name] = [_number(name, part.strip(), "--grid") for part in parts]
    return grid


def parse_ranges(specs: list[str]) -> dict[str, tuple[float, float]]:
    """``["window_influence=0.1:0.4"]`` -> field -> (low, high)."""
    ranges: dict[str, tuple[float, float]] = {}
    for spec in specs:
        name, _, bounds = spec.partition("=")
        name = _field(name.strip(), "--range")
        low, sep, high = bounds.partition(":")
        if not sep:
            raise SearchError(f"argument --range: expected FIELD=LOW:HIGH, got {spec!r}")
        low_value, high_value = (_number(name, text.strip(), "--range") for text in (low, high))
        if high_value < low_value:
            raise SearchError(f"argument --range: {name} has LOW above HIGH in {spec!r}")
        ranges[name] = (low_value, high_value)
    return ranges


def grid_candidates(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the order the fields and values were given."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def random_candidates(ranges: dict[str, tuple[float, float]], count: int, seed: int) -> list[dict]:
    """``count`` candidates drawn uniformly from ``ranges`` (integers for integer fields)."""
    rng = np.random.default_rng(seed)
    candidates = []
    for _ in range(count):
        candidate = {}
        for name, (low, high) in ranges.items():
            if name in _INTEGER_FIELDS:
                candidate[name] = int(rng.integers(low, high + 1))
            else:
                candidate[name] = round(float(rng.uniform(low, high)), 6)
        candidates.append(candidate)
    return candidates


def resolved_values(base: TrackerConfig, values: dict) -> dict:
    """Every searchable field's value once ``values`` apply to ``base``: candidates that name
    different fields but mean the same config are the same candidate."""
    config = dataclasses.replace(base, **values)
    return {name: getattr(config, name) for name in SEARCHABLE_FIELDS}


def candidate_key(values: dict) -> str:
    return json.dumps(values, sort_keys=True)


@dataclasses.dataclass
class SearchState:
    """What ``tune.json`` holds: the settings the scores depend on and the scores so far."""

    settings: dict
    scores: dict[str, dict]  # candidate key -> {"values": ..., "sequences": name -> scores}

    def to_json(self) -> str:
        return json.dumps({"settings": self.settings, "candidates": self.scores}, indent=1) + "\n"


def load_state(out_dir: Path, settings: dict) -> SearchState:
    """The search state in ``out_dir`` (empty if none), checked to belong to ``settings``."""
    path = out_dir / RESULTS_NAME
    if not path.exists():
        return SearchState(settings, {})
    try:
        stored = json.loads(path.read_text())
        stored_settings, scores = stored["settings"], stored["candidates"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SearchError(f"{path}: not a search results file; use another --out") from None
    if stored_settings != settings:
        changed = sorted(
            k for k in set(stored_settings) | set(settings) if stored_settings.get(k) != settings.get(k)
        )
        raise SearchError(
            f"{path}: holds a search with other settings ({', '.join(changed)}); use another --out"
        )
    return SearchState(settings, scores)


def summarize_candidate(sequences: dict[str, dict]) -> dict:
    """Mean success AUC and precision over the scored sequences (OTB's overall figures)."""
    scored = [scores for scores in sequences.values() if scores.get("auc") is not None]
    if not scored:
        return {"auc": None, "precision": None, "scored_sequences": 0}
    return {
        "auc": float(np.mean([scores["auc"] for scores in scored])),
        "precision": float(np.mean([scores["precision"] for scores in scored])),
        "scored_sequences": len(scored),
    }


def ranking(state: SearchState, names: list[str]) -> list[tuple[dict, dict]]:
    """Complete candidates (every sequence done) as (values, summary), best success AUC first."""
    rows = []
    for entry in state.scores.values():
        if all(name in entry["sequences"] for name in names):
            summary = summarize_candidate({name: entry["sequences"][name] for name in names})
            if summary["auc"] is not None:
                rows.append((entry["values"], summary))
    rows.sort(key=lambda row: (-row[1]["auc"], -row[1]["precision"]))
    return rows


def format_ranking(rows: list[tuple[dict, dict]], fields: list[str], total: int) -> str:
    """Markdown table of :func:`ranking`'s rows."""
    lines = [
        "| rank | " + " | ".join(fields) + " | AUC | precision@20px | sequences |",
        "| ---: | " + " | ".join("---:" for _ in fields) + " | ---: | ---: | ---: |",
    ]
    for rank, (values, summary) in enumerate(rows, start=1):
        cells = " | ".join(f"{values.get(name, '')}" for name in fields)
        lines.append(
            f"| {rank} | {cells} | {summary['auc']:.4f} | {summary['precision']:.4f} | "
            f"{summary['scored_sequences']} |"
        )
    note = (
        f"\n{len(rows)} of {total} candidates complete. AUC: mean success AUC over the sequences "
        "(21 IoU thresholds, OTB); precision: fraction of frames with centre error ≤ 20 px, mean "
        "over the sequences. Unlisted fields keep the base config's values.\n"
    )
    return "\n".join(lines) + "\n" + note


def write_outputs(
    out_dir: Path, state: SearchState, names: list[str], fields: list[str], total: int, base: TrackerConfig
) -> TrackerConfig | None:
    """Rewrite ``tune.json``, ``tune.md`` and ``best_config.json``; returns the best config."""
    write_text_atomic(out_dir / RESULTS_NAME, state.to_json())
    rows = ranking(state, names)
    write_text_atomic(out_dir / TABLE_NAME, format_ranking(rows, fields, total))
    if not rows:
        return None
    best = dataclasses.replace(base, **rows[0][0])
    write_config_file(out_dir / BEST_NAME, best)
    return best


def run_search(
    variables: dict,
    model_config: ModelConfig,
    base: TrackerConfig,
    candidates: list[dict],
    sequences: list[Sequence],
    out_dir: str | os.PathLike,
    *,
    settings: dict,
    slots: int,
    max_frames: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
    plan: ConvPlan | None = None,
) -> tuple[SearchState, TrackerConfig | None, bool]:
    """Track every candidate on every sequence (those not done yet) and write the outputs.

    Args:
      variables, model_config: the network (device-resident variables).
      base: the config the candidates' values apply to.
      candidates: field -> value dicts.
      sequences: validated sequences with ground truth.
      out_dir: output folder (see the module docstring).
      settings: what the scores depend on (weights, sequences, base config, frames); a folder
        holding another search's results is refused.
      slots: jobs moving together; max_frames: frames tracked per sequence.
      plan: the network's convolution plan (None: the platform's default).

    Returns:
      ``(state, best, interrupted)``.

    Raises:
      SearchError: a candidate is not a valid config, or ``out_dir`` holds another search.
      OutputError: ``out_dir`` is a file or cannot be written into.
    """
    out_dir = check_writable_dir(out_dir, "argument --out: ")
    state = load_state(out_dir, settings)
    names = [sequence.name for sequence in sequences]
    fields = sorted({name for candidate in candidates for name in candidate})
    configs: dict[str, TrackerConfig] = {}
    for values in candidates:
        try:
            config = fit_config(dataclasses.replace(base, **values), model_config)
        except ConfigError as error:
            raise SearchError(f"candidate {values}: {error}") from None
        resolved = resolved_values(base, values)
        configs[candidate_key(resolved)] = config
        state.scores.setdefault(candidate_key(resolved), {"values": resolved, "sequences": {}})
    todo = [
        (key, sequence)
        for key in configs
        for sequence in sequences
        if sequence.name not in state.scores[key]["sequences"]
    ]
    log(f"{len(configs)} candidates x {len(sequences)} sequences: {len(todo)} runs to do")
    groups: dict[TrackerConfig, list[tuple[str, Sequence]]] = {}
    for key, sequence in todo:
        groups.setdefault(static_config(configs[key]), []).append((key, sequence))
    best = write_outputs(out_dir, state, names, fields, len(configs), base)
    interrupted = False
    try:
        for static, pairs in groups.items():
            jobs = [SequenceJob(sequence, hyper_params(configs[key])) for key, sequence in pairs]
            spec = tracker_spec(static, model_config, plan)
            for done in track_sequences(
                variables, spec, jobs, slots=slots, max_frames=max_frames, progress=progress
            ):
                key, sequence = pairs[done.index]
                result = done.result
                state.scores[key]["sequences"][sequence.name] = dict(result.scores or {"auc": None})
                entry = state.scores[key]["sequences"]
                if all(name in entry for name in names):
                    best = write_outputs(out_dir, state, names, fields, len(configs), base)
                    summary = summarize_candidate(entry)
                    auc = "–" if summary["auc"] is None else f"{summary['auc']:.4f}"
                    shown = {name: state.scores[key]["values"][name] for name in fields}
                    log(f"candidate {shown}: AUC {auc}")
    except KeyboardInterrupt:
        interrupted = True
    best = write_outputs(out_dir, state, names, fields, len(configs), base)
    return state, best, interrupted


def search_settings(
    weights: str, sequences: list[Sequence], base: TrackerConfig, max_frames: int | None
) -> dict:
    """What a search's scores depend on, as stored in ``tune.json``."""
    return {
        "weights": os.path.abspath(weights),
        "sequences": [sequence.source or sequence.name for sequence in sequences],
        "base_config": config_values(base),
        "max_frames": max_frames,
    }
