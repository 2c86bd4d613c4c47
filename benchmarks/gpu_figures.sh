#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md in one run of at most BUDGET seconds.
#
# Usage (repository root, ../shared beside it, a JAX that sees a GPU, PyTorch with CUDA):
#
#     benchmarks/gpu_figures.sh OUT_DIR [BUDGET_SECONDS, default 450]
#     STEPS=got10k,parity benchmarks/gpu_figures.sh OUT_DIR 300    # only the steps named
#
# PYTHON (default python3) runs the modules; LOADER_WORKERS sets the loader processes.
#
# Steps, most wanted first; each writes OUT_DIR/<step>.txt and gets what is left of the budget (at
# most its own limit; none under 30 s), so a slow step cannot starve the report of the ones before
# it. Expected seconds on one H100 or H200 in brackets (estimated from the steps' work; not measured):
#
#   env         [5]  nvidia-smi, package versions, the devices JAX and PyTorch see
#   track       [60] tracking fps, one target and N = 64 and 256 targets, device only and end to
#                    end (single: also the host loop track.py runs), end to end / device only per
#                    row (the goal: >= 0.8), against siamfc-pytorch's tracker path on the same GPU
#   train8      [60] train step, batch 8, device only and end to end fed by LOADER_WORKERS loader
#                    processes, end to end / device only, against siamfc-pytorch's train step
#   drift       [50] VOT bag tracked by siamfc-pytorch's path on the CPU, on the GPU with PyTorch's
#                    defaults and with TF32 off, and by ours on the GPU and on the CPU: mean IoU of
#                    every pair and with the stored siamfc-pytorch boxes, first frame where they part;
#                    the boxes in OUT_DIR/drift/
#   parity      [45] tests/test_crop.py and the parity tests of tests/test_tracker.py on the GPU
#   data        [40] loader pairs/s, curated crops (ours) against cropping full frames on the fly,
#                    1 worker and one per core
#   bf16_track  [35] tracking with --compute-dtype bfloat16, one target and 256: compare with track
#   bf16_train  [35] train step, batch 8, bfloat16: compare its device-only rate with train8's
#   got10k      [75] a GOT-10k-scale synthetic run at 1/40 (233 sequences of 150 frames, 2 epochs of
#                    9,335 pairs): rendering, curation, training timed on all cores, projected to
#                    the full 9,335 sequences and 50 epochs
#   bf16_auc    [45] success AUC of the original net, float32 and bfloat16 side by side (the first 4
#                    validation sequences, Crossing and bag); OUT_DIR/bf16_auc.<dtype>.txt
#   batched     [30] track_jobs (track.py --batch K) against one sequence at a time, K = 1, 16, 64
#   track_tf32  [40] tracking at TF32 precision (--precision default) instead of float32
#
# The steps up to bf16_auc add up to about the default budget: the last ones run where the others
# were quicker, and any skipped or cut short runs in another session by STEPS.
#
# Full-scale default weights do not fit beside these: run them alone, in a later 8-minute run,
#
#     STEPS=rich_full,rich_judge benchmarks/gpu_figures.sh OUT_DIR 470
#
#   rich_full  the synthetic_rich recipe (the packaged weights') with RICH_PAIRS_PER_SEQ (default 65)
#              instead of 2 pairs per sequence per epoch: 1,200 sequences x 65 x 6 epochs = 468,000
#              pairs, as many as siamfc-pytorch's 50 GOT-10k epochs; LOADER_WORKERS loader processes
#              (default: all cores but 2). Writes OUT_DIR/rich_full.msgpack and
#              OUT_DIR/rich_full_history.json. At the 1,500-2,500 pairs/s a GPU fed by 14 loader
#              processes may reach (train8 measures it), 3-5 min of training after about 1 min of
#              rendering and curation (estimated): if train8 shows less, lower RICH_PAIRS_PER_SEQ
#              so that the run fits its 340 s.
#   rich_judge success AUC of those weights on the 12 validation sequences and Crossing and bag
#              (python -m benchmarks.weights_accuracy; the packaged weights: 0.358 on validation).
#
# The machine's Python needs siamfc_jax's packages (grain, tensorflow-datasets and dm-tree too).
set -u -o pipefail
out=${1:?usage: benchmarks/gpu_figures.sh OUT_DIR [BUDGET_SECONDS]}
budget=${2:-450}
python=${PYTHON:-python3}
steps=${STEPS:-env,track,train8,drift,parity,data,bf16_track,bf16_train,got10k,bf16_auc,batched,track_tf32}
cores=$(nproc)
# Loader processes: a core each, two cores left to the training process (which feeds the GPU).
loader_workers=${LOADER_WORKERS:-$((cores > 3 ? cores - 2 : 1))}
rich_pairs=${RICH_PAIRS_PER_SEQ:-65}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}
start=$SECONDS

step() {  # step NAME LIMIT_SECONDS COMMAND...
    local name=$1 limit=$2 left rc
    shift 2
    [[ ",$steps," == *",$name,"* ]] || return 0
    left=$((budget - (SECONDS - start)))
    if ((left < 30)); then
        echo "== $name: skipped, ${left} s of the budget left"
        return
    fi
    ((limit > left)) && limit=$left
    echo "== $name (at most ${limit} s): $*"
    timeout -k 5 "$limit" "$@" >"$out/$name.txt" 2>&1
    rc=$?
    grep -v -e 'seq/s]' -e '^repeat ' -e 'device(s)] repeat' -e '^  train.py: \.\.\.' "$out/$name.txt" |
        tail -n 40
    echo "== $name: exit $rc at $((SECONDS - start)) s"
}

step env 30 bash -c "nvidia-smi; nproc; free -g; $python -c '
import importlib.metadata as m, jax
for name in (\"jax\", \"jaxlib\", \"flax\", \"optax\", \"orbax-checkpoint\", \"torch\", \"numpy\", \"opencv-python-headless\", \"grain\", \"tensorflow-datasets\"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, \"not installed\")
print(jax.devices())
import cv2, torch
print(\"opencv\", cv2.__version__)
print(\"torch sees CUDA:\", torch.cuda.is_available())
'"
step track 120 "$python" -m benchmarks.track_speed --batch-sizes 64,256 --frames 40 --repeats 2 \
    --torch-device cuda
# Warm-up steps: every loader process delivers its first batches before the timing starts.
step train8 100 "$python" -m benchmarks.train_speed --devices 1 --batch-size 8 --steps 300 --warmup 40 \
    --repeats 2 --workers "$loader_workers" --torch-device cuda
# Ours on the CPU runs in a process of its own (JAX_PLATFORMS=cpu), beside the GPU's.
step drift 90 "$python" -m benchmarks.gpu_drift --sequence bag --torch-device cpu,cuda,cuda-fp32 \
    --jax-platform cuda,cpu --out "$out/drift"
step parity 90 env CI=true "$python" -m pytest tests/test_crop.py tests/test_tracker.py -k "parity or crop" \
    -s -q -p no:cacheprovider
step data 80 "$python" -m benchmarks.data_speed --workers "1,$cores" --sources ours,on-the-fly --repeats 2 \
    --seconds 2
step bf16_track 75 "$python" -m benchmarks.track_speed --compute-dtype bfloat16 --batch-sizes 256 \
    --frames 40 --repeats 2 --no-torch
step bf16_train 60 "$python" -m benchmarks.train_speed --compute-dtype bfloat16 --devices 1 --batch-size 8 \
    --steps 100 --warmup 5 --repeats 2 --torch-device cuda
step got10k 130 "$python" -m benchmarks.got10k_scale --sequences 233 --frames 150 --epochs 2 \
    --workers "$loader_workers"
# Accuracy, not speed: both types at once, each without taking most of the GPU's memory.
step bf16_auc 90 bash -c "
for dtype in float32 bfloat16; do
    XLA_PYTHON_CLIENT_PREALLOCATE=false $python -m benchmarks.weights_accuracy original --sequences 4 \
        --compute-dtype \$dtype >'$out/bf16_auc.'\$dtype.txt 2>&1 &
done
wait
tail -n 12 '$out/bf16_auc.float32.txt' '$out/bf16_auc.bfloat16.txt'"
step batched 60 "$python" -m benchmarks.batched_speed --jobs 64 --frames 20 --slots 1,16,64
step track_tf32 60 "$python" -m benchmarks.track_speed --precision default --batch-sizes 64,256 \
    --frames 40 --repeats 2 --no-torch

rich=${TMPDIR:-/tmp}/siamfc_rich_full
step rich_full 340 bash -c "
rm -rf '$rich' &&
$python train.py --config synthetic_rich --pairs.pairs-per-seq $rich_pairs --workers $loader_workers \
    --workdir '$rich' --no-progress &&
cp '$rich/final.msgpack' '$out/rich_full.msgpack' && cp '$rich/history.json' '$out/rich_full_history.json'"
step rich_judge 120 "$python" -m benchmarks.weights_accuracy "$out/rich_full.msgpack"
echo "== all steps done at $((SECONDS - start)) s"
