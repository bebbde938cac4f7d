"""Training configuration: YAML files over one set of defaults; unknown keys are errors, not surprises."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import yaml

from sdfl_core.datasets import FORMATS
from sdfl_core.errors import first_line

DEFAULTS: dict = {
    "name": "sdfl",
    "seed": 0,
    "crop_scale": 1.4,
    "data": {
        "schema": "300w",
        "train": [],
        "val": [],
        "val_fraction": 0.1,
        "test": [],
        "precrop_size": 256,
        "limit": 0,
    },
    "model": {
        "backbone": "mobilenetv2_050",
        "input_size": 128,
        "head": "graph",
        "edge_mode": "dynamic",
        "k": 3,
        "expansion": 4,
        "hidden": 128,
        "num_blocks": 4,
        "fc_hidden": 256,
        "feature_level": -1,
        "node_attention": False,
        "attention_prior": False,
        "pretrained": "",
        "fc_norm": False,
        "visibility": False,
        "visibility_gate": False,
        "gate_from_cover_only": False,
        "refine": False,
        "refine_patch": 5,
        "refine_blocks": 2,
        "refine_context": 0,
        "refine_self": False,
        "head_side": 0,
        "skip_blocks": [],
        "global_context": False,
        "context_width": 0,
    },
    "augment": {
        "rotation": 40.0,
        "rotation_prob": 0.5,
        "translation": 0.08,
        "scale": 0.1,
        "aspect": 0.08,
        "flip": 0.5,
        "occlusion": 0.5,
        "occlusion_area": 0.2,
        "occlusion_shapes": 0.0,  # share of occluders drawn as sdfl occlusion draws them (rectangles, blobs)
        "occlusion_levels": [5.0, 50.0],  # their cover of the landmark box, percent
        "texture_side": [0.0, 0.0],  # their texture image resized to this longer side (px) first; [0, 0]: as it is
        "color": 0.4,
        "blur": 0.2,
        "gray": 0.1,
        "noise": 0.2,
        "ramp_epochs": 0,
    },
    "loss": {"kind": "softwing", "relative_weight": 1.0, "edge_occlusion": 0.0, "visibility": 1.0,
             "first_stage": 0.5},
    "optim": {
        "name": "adamw",
        "lr": 0.002,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "batch_size": 32,
        "epochs": 60,
        "scheduler": "cosine",
        "warmup_epochs": 1.0,
        "step_size": 100,
        "gamma": 0.2,
        "backbone_lr_mult": 1.0,
        "lr_mults": {},  # parameter-name prefix -> multiplier of lr (e.g. {"context.": 10} for a new module)
        "ema_decay": 0.0,  # > 0: validate and ship an exponential moving average of the weights (timm ModelEmaV3)
    },
    "distill": {
        # > 0: the landmark loss is (1 - weight) x the loss against the labels + weight x the loss against a frozen
        # teacher's mean over the test-time crops (sdfl_core.crops.shifted_affines) of each training crop
        "weight": 0.0,
        "teacher": "",  # a checkpoint; empty: train.init_from
        "crops": 5,
        "flip": False,  # true: the teacher also sees each crop mirrored (its points mirrored back) in the mean
        # true: the teacher sees each training crop as it was before the random occluder was drawn, so the target
        # for a covered face is where the teacher puts the points on the uncovered one
        "clean": False,
    },
    "train": {
        "out_dir": "runs",
        "max_minutes": 0.0,
        "max_steps": 0,
        "num_threads": 0,
        "num_workers": 0,
        "balance": "none",
        "eval_every": 1,
        "device": "auto",
        "init_from": "",
        "init_partial": False,
        # Round the warm start's floating tensors to float16 and back, as `training.ship` stores a shipped model
        # (and so the teacher taken from it, when distill.teacher is empty): a stage that was started from a
        # shipped file is rebuilt from the run that file was shipped from.
        "init_half": False,
        "trainable": "all",
        "select_on": "",
    },
}


class ConfigError(ValueError):
    pass


def _check_value(name: str, default: object, value: object) -> object:
    """``value`` in the type of the default: a typo'd type fails here, not deep inside training."""
    if isinstance(default, bool):  # before int: bool is an int subclass
        if not isinstance(value, bool):
            raise ConfigError(f"config key {name!r} must be true or false, got {value!r}")
        return value
    if isinstance(default, float):
        # PyYAML reads 1e-3 (no dot) as a string; accept it, and ints, as floats.
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {name!r} must be a number, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"config key {name!r} must be an integer, got {value!r}")
        return value
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"config key {name!r} must be a string, got {value!r}")
    if isinstance(default, list) and not isinstance(value, list):
        raise ConfigError(f"config key {name!r} must be a list, got {value!r}")
    return value


OPEN_MAPPINGS = {"optim.lr_mults"}
"""Mappings whose keys are the config's to choose (parameter-name prefixes), not a fixed set of settings."""


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"config key {name!r} must be a number, got {value!r}")
    return float(value)


def _lay_over(name: str, base: dict, value: object) -> dict:
    """The mapping ``base`` (config key ``name``) with ``value`` laid over it."""
    if not isinstance(value, dict):
        raise ConfigError(f"config key {name!r} must be a mapping")
    if name in OPEN_MAPPINGS:  # any key, each a number
        return {**base, **{str(k): _number(f"{name}.{k}", v) for k, v in value.items()}}
    return _merge(base, value, name + ".")


def _merge(base: dict, update: dict, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"unknown config key {name!r}")
        if isinstance(base[key], dict):
            if value is None:  # a section left empty in the YAML
                continue
            out[key] = _lay_over(name, base[key], value)
        else:
            out[key] = _check_value(name, base[key], value)
    return out


def parse_override(text: str) -> tuple[list[str], object]:
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key.strip()}: value {raw!r} is not valid YAML: {first_line(exc)}") from exc
    return key.strip().split("."), value


def apply_override(config: dict, keys: list[str], value: object) -> None:
    node = config
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"unknown config key {'.'.join(keys[: i + 1])!r}")
        if i == len(keys) - 1:
            name = ".".join(keys)
            if isinstance(node[key], dict):
                node[key] = _lay_over(name, node[key], value)
            else:
                node[key] = _check_value(name, node[key], value)
        else:
            node = node[key]


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {first_line(exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return data


def _overlay(base: dict, update: dict) -> dict:
    """``update`` over ``base``: mappings merge key by key, anything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _overlay(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_layers(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A config file with its ``base:`` chain resolved (paths relative to the file), before defaults."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        raise ConfigError(f"config inheritance loops: {' -> '.join(p.name for p in (*_chain, resolved))}")
    data = _read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base must name another config file, got {base!r}")
    return _overlay(read_layers(path.parent / base, (*_chain, resolved)), data)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> dict:
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        config = _merge(config, read_layers(path))
    for text in overrides:
        apply_override(config, *parse_override(text))
    for entry in config["data"]["train"] + config["data"]["val"] + config["data"]["test"]:
        if not isinstance(entry, dict) or set(entry) - {"path", "format", "weight"} or "path" not in entry:
            raise ConfigError(f"data entries must be {{path: ..., format: ..., weight: ...}}, got {entry!r}")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ConfigError(f"data entry {entry['path']!r} has weight {weight!r}: must be a number >= 0")
        if str(entry.get("format", "300w")).lower() not in FORMATS:
            raise ConfigError(f"data entry {entry['path']!r} has unknown format {entry['format']!r} (valid: {', '.join(FORMATS)})")
    return config


def config_hash(config: dict) -> str:
    """sha256 of a resolved config (key order and YAML layout do not matter)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
