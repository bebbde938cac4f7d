"""Training configs: YAML over one set of defaults, --set overrides, and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_configs_load(name):
    config = load_config(CONFIGS / name)
    assert config["name"] == Path(name).stem
    assert config["data"]["train"] and all("path" in e for e in config["data"]["train"])


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
