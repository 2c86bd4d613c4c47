"""A hyper-parameter search across processes and hosts (``python -m siamfc_jax.tune --distributed``).

The same search as :func:`~siamfc_jax.tune.search.run_search`, split as
:mod:`siamfc_jax.evaluation.distributed` splits a folder run: process 0 reads what ``tune.json``
already holds and sends it to the others, every process lists the (candidate, sequence) runs still
to do in the same order and tracks its share of them (:func:`~siamfc_jax.evaluation.distributed.
balanced_split`, by frames), and process 0 gathers the scores through the key-value store of
``jax.distributed`` and writes ``tune.json``, ``tune.md`` and ``best_config.json``. Only process 0
reads or writes the output folder. Ctrl-C in any process keeps the runs it finished; the same
command continues the search.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

from siamfc_jax.config import ConfigError, ModelConfig, TrackerConfig
from siamfc_jax.evaluation.distributed import Cluster
from siamfc_jax.evaluation.scoring import tracked_length
from siamfc_jax.evaluation.tracking import SequenceJob, track_sequences
from siamfc_jax.files import check_writable_dir
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker.device import fit_config, hyper_params, static_config, tracker_spec
from siamfc_jax.tune.search import (
    SearchError,
    SearchState,
    candidate_key,
    load_state,
    resolved_values,
    write_outputs,
)

Run = tuple[str, Sequence]  # (candidate key, sequence)


def candidate_configs(base: TrackerConfig, candidates: list[dict], model_config: ModelConfig) -> dict:
    """Candidate key -> (resolved values, fitted config), in the order of ``candidates``.

    Raises:
      SearchError: a candidate is not a valid config.
    """
    configs = {}
    for values in candidates:
        try:
            config = fit_config(dataclasses.replace(base, **values), model_config)
        except ConfigError as error:
            raise SearchError(f"candidate {values}: {error}") from None
        resolved = resolved_values(base, values)
        configs[candidate_key(resolved)] = (resolved, config)
    return configs


def _shared_state(cluster: Cluster, out_dir: str | os.PathLike, settings: dict) -> tuple[Path | None, dict]:
    """Process 0's output folder and the scores ``tune.json`` holds, sent to every process."""
    if not cluster.coordinator:
        return None, json.loads(cluster.wait("tune-state", 0).decode())
    folder = check_writable_dir(out_dir, "argument --out: ")
    scores = load_state(folder, settings).scores
    cluster.put("tune-state", json.dumps(scores).encode())
    return folder, scores


def _track_share(
    variables: dict, model_config: ModelConfig, configs: dict, runs: list[Run], *, slots: int,
    max_frames: int | None, progress: bool, plan: ConvPlan | None,
) -> tuple[dict[int, dict], bool]:
    """Scores of ``runs`` by index (those finished) and whether Ctrl-C stopped the tracking."""
    groups: dict[TrackerConfig, list[int]] = {}
    for index, (key, _) in enumerate(runs):
        groups.setdefault(static_config(configs[key][1]), []).append(index)
    scores: dict[int, dict] = {}
    try:
        for static, indices in groups.items():
            jobs = [SequenceJob(runs[i][1], hyper_params(configs[runs[i][0]][1])) for i in indices]
            spec = tracker_spec(static, model_config, plan)
            for done in track_sequences(
                variables, spec, jobs, slots=slots, max_frames=max_frames, progress=progress
            ):
                scores[indices[done.index]] = dict(done.result.scores or {"auc": None})
    except KeyboardInterrupt:
        return scores, True
    return scores, False


def run_distributed_search(
    cluster: Cluster,
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
) -> tuple[SearchState | None, TrackerConfig | None, bool]:
    """:func:`~siamfc_jax.tune.search.run_search` with this process's share of the runs.

    Returns:
      ``(state, best, interrupted)`` on process 0 (``interrupted``: in any process); elsewhere
      ``(None, None, interrupted)`` of this process.

    Raises:
      SearchError, OutputError: as :func:`~siamfc_jax.tune.search.run_search` (process 0 reads
        the folder; the others fail with its message).
    """
    configs = candidate_configs(base, candidates, model_config)
    folder, stored = _shared_state(cluster, out_dir, settings)
    state = SearchState(settings, stored)
    for key, (resolved, _) in configs.items():
        state.scores.setdefault(key, {"values": resolved, "sequences": {}})
    runs = [
        (key, sequence)
        for key in configs
        for sequence in sequences
        if sequence.name not in state.scores[key]["sequences"]
    ]
    share = cluster.share([tracked_length(sequence, max_frames) for _, sequence in runs])
    log(f"{len(configs)} candidates x {len(sequences)} sequences: {len(runs)} runs to do, "
        f"{len(share.indices)} in process {cluster.process} of {cluster.count}")  # fmt: skip
    names = [sequence.name for sequence in sequences]
    fields = sorted({name for candidate in candidates for name in candidate})
    if folder is not None:
        write_outputs(folder, state, names, fields, len(configs), base)
    mine = [runs[index] for index in share.indices]
    done, interrupted = _track_share(
        variables, model_config, configs, mine, slots=slots, max_frames=max_frames, progress=progress,
        plan=plan,
    )
    finished = {share.indices[index]: scores for index, scores in done.items()}
    if folder is None:
        cluster.put("tune-results", json.dumps({"scores": finished, "interrupted": interrupted}).encode())
        return None, None, interrupted
    for process in range(1, cluster.count):
        sent = json.loads(cluster.wait("tune-results", process).decode())
        finished.update({int(index): scores for index, scores in sent["scores"].items()})
        interrupted = interrupted or sent["interrupted"]
    for index in sorted(finished):  # in the runs' order: the same tune.json whatever finished first
        key, sequence = runs[index]
        state.scores[key]["sequences"][sequence.name] = finished[index]
    best = write_outputs(folder, state, names, fields, len(configs), base)
    return state, best, interrupted
