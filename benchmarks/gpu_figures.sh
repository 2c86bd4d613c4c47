#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md ("GPU") in one run of at most BUDGET seconds.
#
# Usage (repository root, ../shared beside it, a JAX that sees a GPU, PyTorch with CUDA):
#
#     benchmarks/gpu_figures.sh OUT_DIR [BUDGET_SECONDS, default 450]
#
# Steps, most wanted first; each writes OUT_DIR/<step>.txt and gets what is left of the budget
# (at most its own limit), so a slow step cannot starve the report of the ones before it:
#
#   env          nvidia-smi, package versions, the devices JAX sees
#   track        tracking fps, single target and N = 64 and 256 targets, device-only and end to end,
#                auto against lax and against siamfc-pytorch's tracker path, its network on the
#                same GPU
#   train8       train step, batch 8 (siamfc-pytorch's), device-only and end to end, auto
#                (lax_per_group on GPUs) against lax and matmul, and against siamfc-pytorch's
#                train step on the same GPU
#   track_impls  auto against lax and matmul, single target and N = 64 (with all six
#                formulations, compiling their 12 programs ran past 120 s on the H200)
#   train64      train step, batch 64, against siamfc-pytorch's
#   track_tf32   tracking at TF32 precision (--precision default) instead of the float32 default
#   batched      track_jobs (track.py --batch K) against one sequence at a time, K = 1, 16, 64
#
# On the H200 of 2026-12-04 the steps took about 5 minutes together, before the track step also
# timed lax (benchmarks/RESULTS.md, "GPU").
# The machine's Python needs siamfc_jax's packages (grain, tensorflow-datasets and dm-tree too).
set -u -o pipefail
out=${1:?usage: benchmarks/gpu_figures.sh OUT_DIR [BUDGET_SECONDS]}
budget=${2:-450}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}
start=$SECONDS

step() {  # step NAME LIMIT_SECONDS COMMAND...
    local name=$1 limit=$2 left rc
    shift 2
    left=$((budget - (SECONDS - start)))
    if ((left < 30)); then
        echo "== $name: skipped, ${left} s of the budget left"
        return
    fi
    ((limit > left)) && limit=$left
    echo "== $name (at most ${limit} s): $*"
    timeout -k 5 "$limit" "$@" >"$out/$name.txt" 2>&1
    rc=$?
    grep -v -e 'seq/s]' -e '^repeat ' -e 'device(s)] repeat' "$out/$name.txt" | tail -n 40
    echo "== $name: exit $rc at $((SECONDS - start)) s"
}

step env 60 bash -c "nvidia-smi; $python -c '
import importlib.metadata as m, jax
for name in (\"jax\", \"jaxlib\", \"flax\", \"optax\", \"orbax-checkpoint\", \"torch\", \"numpy\", \"opencv-python-headless\", \"grain\", \"tensorflow-datasets\"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, \"not installed\")
print(jax.devices())
'"
step track 180 "$python" -m benchmarks.track_speed --batch-sizes 64,256 --frames 60 --repeats 3 \
    --compare-impl lax --torch-device cuda
step train8 120 "$python" -m benchmarks.train_speed --devices 1 --batch-size 8 --steps 50 --warmup 5 \
    --compare-impl lax,matmul --torch-device cuda
step track_impls 120 "$python" -m benchmarks.track_speed --batch-sizes 64 --frames 30 --repeats 2 \
    --compare-impl lax,matmul --no-torch
step train64 90 "$python" -m benchmarks.train_speed --devices 1 --batch-size 64 --steps 20 \
    --torch-device cuda
step track_tf32 60 "$python" -m benchmarks.track_speed --precision default --batch-sizes 64,256 \
    --frames 60 --repeats 2 --no-torch
step batched 60 "$python" -m benchmarks.batched_speed --jobs 64 --frames 20 --slots 1,16,64
echo "== all steps done at $((SECONDS - start)) s"
