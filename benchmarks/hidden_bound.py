"""How ``training.ship``'s hidden bound was chosen: each setting against the unbounded model, on held-out
training crops drawn with the run's own augmentation (jitter, rotation, occluders).

    python benchmarks/hidden_bound.py --run runs/sdfl_68_vis [--run ...] [--faces 1024]

For each run (its ``config.yaml`` and ``best.pt``): the bound is measured on the first ``--faces`` plain crops of
the training split (``training.calibrate.training_crops``, as ``training.ship`` does) and scored on the next
``--faces`` faces, augmented. Per setting (quantile x margin) it prints the mean and median face's NME (% of the
outer-eye-corner distance, all points), the 99th percentile and the largest of each face's worst point (in
inter-ocular distances) and how many faces have a point more than one inter-ocular distance off; the first row
is the model without a bound. The validation split is not used: ``training.validate`` and
``training.occlusion_val`` score a bounded model there. An analysis, not a test.
"""
from __future__ import annotations

from preamble import setup_logging  # isort: skip  (first: paths, logs, native import order)

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from sdfl_core.checkpoint import load_checkpoint
from sdfl_core.schemas import get_schema
from training.calibrate import hidden_norms, training_crops


def face_errors(model, dataset, ocular: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per face: the mean and the largest point error, in inter-ocular distances."""
    means, worst = [], []
    for x, y, _ in DataLoader(dataset, batch_size=64, shuffle=False):
        with torch.inference_mode():
            coords = model(x)[0]
        d = (coords - y).norm(dim=-1) / (y[:, ocular[0]] - y[:, ocular[1]]).norm(dim=-1, keepdim=True)
        means.append(d.mean(1))
        worst.append(d.amax(1))
    return torch.cat(means).numpy(), torch.cat(worst).numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, type=Path, help="a run folder (repeat)")
    parser.add_argument("--faces", type=int, default=1024, help="crops to measure the bound on, and as many to score")
    parser.add_argument("--quantiles", default="0.99,0.999,1", help="per-node quantiles of the norm")
    parser.add_argument("--margins", default="1,1.5,2", help="factors on the quantile")
    args = parser.parse_args()
    setup_logging()
    torch.set_num_threads(2)
    settings = [(float(q), float(m)) for q in args.quantiles.split(",") for m in args.margins.split(",")]
    for run in args.run:
        config = yaml.safe_load((run / "config.yaml").read_text())
        model, info = load_checkpoint(run / "best.pt")
        ocular = get_schema(info.schema.name).ocular
        norms = hidden_norms(model, training_crops(config, info, args.faces))
        scored = training_crops(config, info, args.faces, skip=args.faces, augment=True, seed=1)
        print(f"\n{run}: bound measured on {len(norms)} plain training crops, scored on {len(scored)} other "
              "training faces, augmented")
        print(f"{'quantile':>8} {'margin':>6} {'NME %':>7} {'median %':>8} {'worst p99':>9} {'worst max':>9} {'> 1 io':>6}")
        for quantile, margin in [(None, None), *settings]:
            model.set_hidden_bound(None if quantile is None else torch.quantile(norms, quantile, dim=0) * margin)
            mean, worst = face_errors(model, scored, ocular)
            label = f"{'none':>8} {'-':>6}" if quantile is None else f"{quantile:>8g} {margin:>6g}"
            print(f"{label} {mean.mean() * 100:>7.2f} {np.median(mean) * 100:>8.2f} {np.percentile(worst, 99):>9.2f} "
                  f"{worst.max():>9.2f} {int((worst > 1).sum()):>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
