"""Training configs: YAML over one set of defaults, --set overrides, and clear errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from training.config import DEFAULTS, ConfigError, load_config, parse_override

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_load_and_are_a_copy():
    config = load_config(None)
    assert config == DEFAULTS
    config["optim"]["lr"] = 1.0
    assert DEFAULTS["optim"]["lr"] == 0.002


ALL_CONFIGS = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml"))


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_every_config_resolves_and_builds_its_model(name):
    import torch

    from sdfl_core.graph import mine_adjacency
    from sdfl_core.model import ModelConfig, SDFLModel
    from sdfl_core.schemas import get_schema

    path = CONFIGS / name
    raw = yaml.safe_load(path.read_text())
    config = load_config(path)
    if "name" in raw:
        assert config["name"] == path.stem
    else:  # a shared base: some other config must build on it
        users = [p for p in CONFIGS.rglob("*.yaml") if (yaml.safe_load(p.read_text()) or {}).get("base")
                 and (p.parent / yaml.safe_load(p.read_text())["base"]).resolve() == path.resolve()]
        assert users, f"{name} has no name and no config uses it as its base"
    assert config["data"]["train"] and all("path" in e for e in config["data"]["train"])
    mc = config["model"]
    n = get_schema(config["data"]["schema"]).num_points
    shapes = np.random.default_rng(0).normal(size=(20, n, 2))
    model_cfg = ModelConfig(num_points=n, **{k: v for k, v in mc.items() if k not in ("k", "pretrained")})
    model = SDFLModel(model_cfg, mine_adjacency(shapes, k=mc["k"])).eval()
    with torch.no_grad():
        coords = model(torch.zeros(1, 3, mc["input_size"], mc["input_size"]))[0]
    assert coords.shape == (1, n, 2)
    if mc["pretrained"]:
        from training.pretrained import get_source

        assert get_source(mc["pretrained"]).arch == mc["backbone"]


def test_base_chain_overlays_mappings_and_replaces_lists(tmp_path):
    (tmp_path / "root.yaml").write_text("seed: 3\noptim: {lr: 0.01, epochs: 5}\ndata:\n  train: [{path: a}, {path: b}]\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\nname: mid\noptim: {epochs: 7}\n")
    (tmp_path / "sub" / "leaf.yaml").write_text("base: mid.yaml\nname: leaf\ndata:\n  train: [{path: c}]\n")
    config = load_config(tmp_path / "sub" / "leaf.yaml")
    assert config["name"] == "leaf" and config["seed"] == 3
    assert config["optim"]["lr"] == 0.01 and config["optim"]["epochs"] == 7
    assert config["optim"]["batch_size"] == DEFAULTS["optim"]["batch_size"]
    assert config["data"]["train"] == [{"path": "c"}]


def test_base_loops_and_missing_bases_are_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: {x: 1}\n")
    with pytest.raises(ConfigError, match="base must name"):
        load_config(tmp_path / "d.yaml")


LANDMARK_STAGES = sorted(p.stem.removeprefix("sdfl_68") for p in CONFIGS.glob("sdfl_68*.yaml") if not p.stem.endswith("_vis"))
"""Every landmark stage of the shipped chain (the vis stages' learning rates differ by head)."""


@pytest.mark.parametrize("stage", LANDMARK_STAGES)
def test_twins_differ_only_in_the_head(stage):
    sdfl, fc = load_config(CONFIGS / f"sdfl_68{stage}.yaml"), load_config(CONFIGS / f"fc_68{stage}.yaml")
    assert sdfl["model"]["head"] == "graph" and fc["model"]["head"] == "fc"
    assert fc["train"]["init_from"] == sdfl["train"]["init_from"].replace("sdfl_68", "fc_68")
    for config in (sdfl, fc):
        config.pop("name")
        config["train"].pop("init_from")
        config["model"] = {k: v for k, v in config["model"].items()
                           if k not in ("head", "node_attention", "attention_prior", "fc_norm", "global_context", "context_width")}
        config["optim"]["lr_mults"] = {k: v for k, v in config["optim"]["lr_mults"].items() if k not in ("context.", "attn_prior")}
        config["loss"].pop("edge_occlusion")
    assert sdfl == fc


def test_config_hash_ignores_key_order():
    from training.config import config_hash

    a = load_config(CONFIGS / "sdfl_68.yaml")
    b = {key: a[key] for key in reversed(list(a))}
    assert config_hash(a) == config_hash(b)
    b["optim"] = {**b["optim"], "lr": 0.5}
    assert config_hash(a) != config_hash(b)


def test_yaml_overrides_only_what_it_names(tmp_path):
    config = load_config(write(tmp_path, "name: tiny\noptim: {lr: 0.01, epochs: 3}\naugment:\n"))
    assert config["name"] == "tiny"
    assert config["optim"]["lr"] == 0.01 and config["optim"]["epochs"] == 3
    assert config["optim"]["batch_size"] == DEFAULTS["optim"]["batch_size"]
    assert config["augment"] == DEFAULTS["augment"]


def test_unknown_yaml_key_names_its_dotted_path(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'optim\.lrr'"):
        load_config(write(tmp_path, "optim:\n  lrr: 0.1\n"))
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        load_config(write(tmp_path, "bogus: 1\n"))


def test_lr_mults_takes_any_prefix_overlays_its_base_and_wants_numbers(tmp_path):
    base = write(tmp_path, "optim:\n  lr_mults:\n    context.: 10\n")
    (tmp_path / "child.yaml").write_text("base: c.yaml\noptim:\n  lr_mults: {edge_fc.: 2}\n")
    assert load_config(tmp_path / "child.yaml")["optim"]["lr_mults"] == {"context.": 10.0, "edge_fc.": 2.0}
    assert load_config(base, ["optim.lr_mults={embed.: 0.5}"])["optim"]["lr_mults"] == {"context.": 10.0, "embed.": 0.5}
    assert load_config(None)["optim"]["lr_mults"] == {}
    with pytest.raises(ConfigError, match=r"'optim\.lr_mults\.context\.' must be a number"):
        load_config(base, ["optim.lr_mults={context.: fast}"])


def test_a_section_given_a_scalar_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="'optim' must be a mapping"):
        load_config(write(tmp_path, "optim: 3\n"))


def test_set_values_are_parsed_as_yaml():
    config = load_config(None, ["optim.lr=0.01", "train.balance=pdb", "optim.epochs=7",
                                "data.train=[{path: /x, format: csv}]", "name=run 2"])
    assert config["optim"]["lr"] == 0.01 and isinstance(config["optim"]["lr"], float)
    assert config["train"]["balance"] == "pdb"
    assert config["optim"]["epochs"] == 7 and isinstance(config["optim"]["epochs"], int)
    assert config["data"]["train"] == [{"path": "/x", "format": "csv"}]
    assert config["name"] == "run 2"


def test_set_accepts_exponent_floats_and_ints_for_floats():
    # PyYAML reads '1e-3' as a string; it must still become the float the optimizer needs.
    config = load_config(None, ["optim.lr=1e-3", "crop_scale=2"])
    assert config["optim"]["lr"] == pytest.approx(0.001) and isinstance(config["optim"]["lr"], float)
    assert config["crop_scale"] == 2.0 and isinstance(config["crop_scale"], float)


def test_set_overrides_the_yaml(tmp_path):
    config = load_config(write(tmp_path, "optim: {lr: 0.5}\n"), ["optim.lr=0.25"])
    assert config["optim"]["lr"] == 0.25


@pytest.mark.parametrize("override, message", [
    ("nope.x=1", r"unknown config key 'nope'"),
    ("optim.lrr=1", r"unknown config key 'optim\.lrr'"),
    ("optim.lr.x=1", r"unknown config key 'optim\.lr\.x'"),
    ("optim.lr", r"key=value"),
    ("optim.lr=fast", r"'optim\.lr' must be a number"),
    ("optim.epochs=2.5", r"'optim\.epochs' must be an integer"),
    ("train.balance=[1]", r"'train\.balance' must be a string"),
    ("train.init_partial=1", r"'train\.init_partial' must be true or false"),
    ("optim=3", r"'optim' must be a mapping"),
    ("data.train=/some/path", r"'data\.train' must be a list"),
    ("optim.lr=[1,", r"not valid YAML"),
])
def test_bad_set_gives_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_booleans_stay_booleans():
    assert load_config(None, ["train.init_partial=true"])["train"]["init_partial"] is True
    assert load_config(None, [])["train"]["init_partial"] is False


def test_parse_override_splits_the_dotted_key():
    assert parse_override("a.b.c= 3") == (["a", "b", "c"], 3)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config not found"):
        load_config(tmp_path / "none.yaml")


def test_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "optim: {lr: [0.1\n"))


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(write(tmp_path, "- a\n- b\n"))


@pytest.mark.parametrize("entry", [
    "['just/a/path']",
    "[{format: 300w}]",
    "[{path: /x, format: 300w, split: test}]",
    "[{path: /x, format: pts}]",
])
def test_malformed_data_entries_are_rejected(tmp_path, entry):
    with pytest.raises(ConfigError, match="data entr"):
        load_config(write(tmp_path, f"data:\n  train: {entry}\n"))


def test_config_error_is_a_value_error():
    # The CLI turns ValueErrors into one-line messages.
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("weight", ["-1", "heavy", "true"])
def test_a_data_weight_must_be_a_number_at_least_zero(tmp_path, weight):
    with pytest.raises(ConfigError, match=r"weight .*must be a number >= 0"):
        load_config(write(tmp_path, f"data:\n  train: [{{path: /x, format: 300w, weight: {weight}}}]\n"))


def test_a_data_weight_is_kept(tmp_path):
    config = load_config(write(tmp_path, "data:\n  train: [{path: /x, format: 300w, weight: 2.5}, {path: /y, format: csv}]\n"))
    assert [entry.get("weight", 1.0) for entry in config["data"]["train"]] == [2.5, 1.0]
