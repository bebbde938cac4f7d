"""Multi-process training: `sdfl train --nproc 2` (torchrun, DDP over gloo on the CPU) and the
distributed form of the pose-balancing sampler."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from train_helpers import read_metrics, tiny_config

from sdfl_core.checkpoint import load_checkpoint, read_checkpoint
from sdfl_core.cli import main
from training.distributed import DistributedWeightedSampler


def test_weighted_sampler_splits_one_draw_over_the_ranks():
    weights = np.array([1.0, 1.0, 6.0, 0.0, 2.0])
    ranks = [DistributedWeightedSampler(weights, num_samples=9, seed=3, rank_=r, world=2) for r in (0, 1)]
    assert [len(s) for s in ranks] == [5, 5]  # 9 rounded up so both ranks take as many steps
    epoch0 = [list(s) for s in ranks]
    # Interleaved, the ranks' shares are one draw of 10, the same for every rank to compute.
    whole = [i for pair in zip(*epoch0) for i in pair]
    draw = torch.multinomial(torch.as_tensor(weights, dtype=torch.double), 10, replacement=True,
                             generator=torch.Generator().manual_seed(3))
    assert whole == draw.tolist()
    assert 3 not in whole  # zero weight, never drawn
    for s in ranks:
        s.set_epoch(1)
    assert [list(s) for s in ranks] != epoch0  # a new draw each epoch
    big = DistributedWeightedSampler(weights, num_samples=20000, seed=0, rank_=1, world=2)
    counts = Counter(big)
    assert counts[2] / len(big) == pytest.approx(0.6, abs=0.03)
    with pytest.raises(ValueError, match="rank 2"):
        DistributedWeightedSampler(weights, 4, rank_=2, world=2)


NO_AUGMENT = {key: 0.0 for key in ("rotation_prob", "translation", "scale", "aspect", "flip", "occlusion", "color",
                                     "blur", "gray", "noise")}


@pytest.mark.slow
@pytest.mark.parametrize("balance", ["none", "pdb"])
def test_two_processes_train_one_run_and_resume(w300_folder, tmp_path, capfd, balance):
    config = tiny_config(w300_folder, tmp_path / "runs", augment=NO_AUGMENT,
                         optim={"batch_size": 5, "epochs": 8, "lr": 3e-4, "scheduler": "constant"},
                         train={"balance": balance, "max_steps": 0})
    path = tmp_path / "runs" / "tiny.yaml"
    assert main(["train", "--config", str(path), "--nproc", "2"]) == 0
    run = tmp_path / "runs" / "tiny"
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]
    rows = read_metrics(run)
    # One writer: one row per epoch. 9 training faces over 2 ranks: 5 each (rounded up), one step of 5 per epoch.
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    loss = [float(r["train_loss"]) for r in rows]
    # Epoch 1's loss is the mean-shape start's, before Adam's first update jolts every weight (one process
    # does the same); from the first trained epoch on, the loss falls.
    assert all(math.isfinite(v) for v in loss) and loss[-1] < 0.8 * loss[1], loss
    _, info = load_checkpoint(run / "best.pt")
    assert info.train_config == config and math.isfinite(info.metrics["val_nme_io"])
    assert capfd.readouterr().out.count("best checkpoint:") == 1  # printed by rank 0 alone

    assert main(["train", "--config", str(path), "--nproc", "2", "--set", "optim.epochs=9",
                 "--resume", str(run / "last.pt")]) == 0
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 10)) and int(rows[-1]["step"]) == 9
    assert read_checkpoint(run / "last.pt")["extra"]["epoch"] == 8


@pytest.mark.slow
def test_failed_ranks_are_one_line(tmp_path, capsys, w300_folder):
    tiny_config(tmp_path / "nowhere", tmp_path / "runs")
    assert main(["train", "--config", str(tmp_path / "runs" / "tiny.yaml"), "--nproc", "2"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sdfl train: error:")]
    assert len(err) == 1 and "distributed training failed" in err[0], err


@pytest.mark.slow
def test_two_processes_train_a_model_with_an_untrained_visibility_output(w300_folder, tmp_path):
    # The visibility output exists but takes no part in the loss: DDP must be told (find_unused_parameters).
    tiny_config(w300_folder, tmp_path / "runs", model={"visibility": True}, loss={"visibility": 0.0},
                optim={"epochs": 2}, train={"max_steps": 0})  # DDP finds the unused ones at the second step
    assert main(["train", "--config", str(tmp_path / "runs" / "tiny.yaml"), "--nproc", "2"]) == 0
    rows = read_metrics(tmp_path / "runs" / "tiny")
    assert len(rows) == 2 and all(math.isfinite(float(r["train_loss"])) for r in rows)
    _, info = load_checkpoint(tmp_path / "runs" / "tiny" / "best.pt")
    assert info.config.visibility
