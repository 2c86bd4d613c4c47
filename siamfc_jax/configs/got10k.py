"""siamfc-pytorch's recipe on GOT-10k: the run behind siamfc-pytorch's ``siamfc_alexnet_e50.pth``.

GOT-10k (http://got-10k.aitestunion.com/, registration) at ``/data/GOT-10k``, holding ``train/``
and ``val/`` (used for the validation AUC); ``--data got10k:DIR`` names another root (and selects
this config by itself)::

    python train.py --config got10k --data got10k:/data/GOT-10k --workdir runs/got10k

Wall time: not measured as a whole. Curation decodes each of GOT-10k's 1.4 M mostly 1280×720
frames once: on the order of an hour on 16 cores (estimated). An epoch is 9,335 pairs, 1,167 steps
of 8. On one NVIDIA H200 the train step ran 2,884 pairs/s on the device and about 990 pairs/s fed
by the loader's threads (benchmarks/RESULTS.md, "GPU"), so an epoch takes about 10 s there
(estimated from those rates); a step takes about 1 s on a 2-core CPU, so this run wants a GPU.

Without GOT-10k, the synthetic world renders a set of the same layout and size (9,335 training
sequences of 150 frames, GOT-10k's mean length, and 180 validation ones; 320×240 frames), which this
run trains on unchanged::

    python -m siamfc_jax.synthetic --out data/got10k-synthetic --num-sequences 9335 --frames 150
    python -m siamfc_jax.synthetic --out data/got10k-synthetic --subset val --seed 1 \
        --num-sequences 180 --frames 150
    python train.py --config got10k --data got10k:data/got10k-synthetic --workdir runs/got10k-synthetic

Its 1.4 M frames take about 20 GB as JPEG and about as much again curated. On a 2-core CPU
(measured on 16 sequences of 150 frames, 2 worker processes) rendering runs at about 0.7 thousand
frames/s and curation (``python -m siamfc_jax.pipeline.tfds_builder``) at about 0.4 thousand, so
about 35 min and 1 h for the full set (extrapolated); training then is the run above (at 1 s a
step on that CPU, 20 min an epoch, 16 h in all).

Scaled down (tests/test_got10k_scale.py: 8 training sequences of 40 frames, 2 validation ones of
20; two steps of batch 4 on 103/175 crops; the same commands with smaller numbers plus flags)::

    python -m siamfc_jax.synthetic --out DIR --num-sequences 8 --frames 40 --workers 2
    python -m siamfc_jax.synthetic --out DIR --subset val --seed 1 --num-sequences 2 --frames 20
    python train.py --config got10k --data got10k:DIR --optim.epochs 1 --optim.batch-size 4 \
        --pairs.exemplar-sz 103 --pairs.instance-sz 175 --val-sequences 1

Wall time of the scaled-down run on a 2-core CPU: rendering 1.6–2.0 s, start-up 2.3 s, curation
1.5 s, training 16 s (compiling the train step and the tracker, 2 steps, validation, export; 33 s
while other jobs kept the machine at a load of about 12): 20–40 s in all.

Expected AUC: not measured for our own training. siamfc-pytorch's model trained this way scores
0.7710 success AUC on OTB Crossing and 0.6431 on VOT bag, in siamfc-pytorch and in siamfc_jax alike
(README, "Tracking accuracy on the shared real sequences").
"""

from __future__ import annotations

from siamfc_jax.config import TrainConfig, replace
from siamfc_jax.configs import default


def get_config() -> TrainConfig:
    """:mod:`siamfc_jax.configs.default` on GOT-10k at ``/data/GOT-10k``."""
    return replace(default.get_config(), data="got10k:/data/GOT-10k")
