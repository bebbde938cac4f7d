"""Helpers shared by the training tests: a tiny run config and a run's metrics."""
from __future__ import annotations

import csv
from pathlib import Path

import yaml

from training.config import load_config


def tiny_config(data: Path, out: Path, **sections) -> dict:
    overrides = {
        "name": "tiny",
        "data": {"schema": "300w", "train": [{"path": str(data), "format": "300w"}], "val_fraction": 0.25,
                 "precrop_size": 96},
        "model": {"backbone": "mobilenetv2_050", "input_size": 64},
        "optim": {"batch_size": 4, "epochs": 2, "warmup_epochs": 0},
        "train": {"out_dir": str(out), "max_steps": 50, "num_threads": 1, "device": "cpu"},
    }
    for section, values in sections.items():
        overrides[section] = {**overrides.get(section, {}), **values}
    path = out / "tiny.yaml"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(overrides))
    return load_config(path)


def read_metrics(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))
