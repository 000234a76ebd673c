"""Strict config validation: every mistake is one clear ConfigError before heavy work."""
import glob
import os

import pytest
import yaml

from mindspore_acmix import config as C
from mindspore_acmix.cli import DEFAULT_CONFIG, REPO_DIR
from mindspore_acmix.engine.optim import warmup_steps

ALL_CONFIGS = sorted(glob.glob(os.path.join(REPO_DIR, "configs", "**", "*.yaml"), recursive=True))


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


BASE = "model: resnet_tiny\nnum_classes: 10\ndataset: digits\n"


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: os.path.relpath(p, REPO_DIR))
def test_every_shipped_recipe_is_valid(path):
    cfg = C.resolve(path)
    assert set(cfg) == set(C.task_keys(cfg["task"]))
    # a recipe run as shipped never says its warm-up was shortened, at any epoch length
    if "warmup_epochs" in cfg:  # classification's epoch-based schedules
        assert not any(warmup_steps(cfg, steps)[1] for steps in range(1, 5000)), cfg["warmup_epochs"]


def test_the_warm_up_is_shortened_only_by_a_change_of_the_recipe():
    cfg = C.resolve(DEFAULT_CONFIG)  # 0.8 warm-up epochs of 5: 35 of 44 steps an epoch
    assert warmup_steps(cfg, 44) == (35, False)
    assert warmup_steps(dict(cfg, epochs=3), 44) == (26, True)  # 20% of 3 epochs
    assert warmup_steps(dict(cfg, warmup_epochs=1.1), 44) == (44, True)  # 20% of 5 epochs


def test_shipped_recipes_cover_the_model_families():
    names = {os.path.basename(p)[:-5] for p in ALL_CONFIGS}
    for model in ["acmix_resnet26", "acmix_resnet38", "acmix_resnet50", "resnet26", "resnet38",
                  "resnet50", "swin_acmix_tiny", "swin_acmix_small", "pvt_acmix_tiny",
                  "pvt_acmix_small"]:
        assert model in names


def test_imagenet_resnet_recipe_matches_the_paper_recipe():
    cfg = C.resolve(os.path.join(REPO_DIR, "configs", "imagenet", "acmix_resnet50.yaml"))
    assert (cfg["optimizer"], cfg["lr"], cfg["lr_batch_size"], cfg["momentum"]) == \
        ("momentum", 0.1, 256, 0.9)
    assert (cfg["weight_decay"], cfg["warmup_epochs"], cfg["label_smoothing"]) == (1e-4, 5, 0.1)
    assert (cfg["image_size"], cfg["eval_resize"]) == (224, 256)


def test_defaults_then_file_then_command_line(tmp_path):
    path = write(tmp_path, BASE + "epochs: 7\nlr: 0.5\n")
    cfg = C.resolve(path, [("epochs", 3)])
    assert cfg["epochs"] == 3 and cfg["lr"] == 0.5 and cfg["batch_size"] == 128


def test_ints_are_accepted_as_floats(tmp_path):
    assert C.resolve(write(tmp_path, BASE + "lr: 1\n"))["lr"] == 1.0
    # PyYAML reads these as strings; they are numbers to anyone writing a config
    assert C.resolve(write(tmp_path, BASE + "lr: 1e-3\nmin_lr: 5E+2\n"))["lr"] == 0.001
    assert C.resolve(None, [("lr", "1e30"), ("model", "resnet_tiny"), ("num_classes", 10),
                            ("dataset", "digits")])["lr"] == 1e30


@pytest.mark.parametrize("text,match", [
    ("bach_size: 8\n", r"unknown key 'bach_size' \(did you mean batch_size\?\)"),
    ("batch_size: 64x\n", r"batch_size must be an integer, got '64x' \(str\)"),
    ("batch_size: 0\n", r"batch_size must be > 0, got 0"),
    ("batch_size: -8\n", r"batch_size must be > 0, got -8"),
    ("batch_size: true\n", r"batch_size must be an integer, got True"),
    ("lr: 0\n", r"lr must be > 0, got 0.0"),
    ("lr: -0.1\n", r"lr must be > 0"),
    ("lr: .nan\n", r"lr must be finite"),
    ("lr: 1e400\n", r"lr must be finite"),
    ("lr: 1e-3x\n", r"lr must be a number, got '1e-3x' \(str\)"),
    ("epochs: 0\n", r"epochs must be > 0"),
    ("optimizer: adam\n", r"optimizer must be one of momentum, adamw, got 'adam'"),
    ("crop_scale: [0.9, 0.1]\n", r"crop_scale must satisfy 0 < low <= high <= 1"),
    ("mean: [1, 2]\n", r"mean must be a list of three numbers"),
    ("hflip: 2\n", r"hflip must be between 0 and 1"),
    ("label_smoothing: 1.0\n", r"label_smoothing must be in \[0, 1\)"),
    ("model: acmix_resnet51\n", r"model is not a registered model; known models: .*acmix_resnet50"),
    ("model: null\n", r"model must not be null"),
    ("num_classes: 7\n", r"the digits data has 10 classes, num_classes is 7"),
    ("eval_resize: 16\nimage_size: 32\n", r"eval_resize \(16\) must be at least image_size \(32\)"),
    ("dataset: imagefolder\n", r"dataset imagefolder needs data_dir"),
])
def test_mistakes_are_named(tmp_path, text, match):
    with pytest.raises(C.ConfigError, match=match):
        C.resolve(write(tmp_path, BASE + text))


def test_missing_required_key(tmp_path):
    with pytest.raises(C.ConfigError, match="num_classes is required"):
        C.resolve(write(tmp_path, "model: resnet_tiny\ndataset: digits\n"))


def test_file_problems(tmp_path):
    with pytest.raises(C.ConfigError, match="does not exist"):
        C.resolve(str(tmp_path / "nope.yaml"))
    with pytest.raises(C.ConfigError, match="is not valid YAML"):
        C.resolve(write(tmp_path, "model: [unclosed\n"))
    (tmp_path / "binary.yaml").write_bytes(bytes(range(128, 256)))
    with pytest.raises(C.ConfigError, match="binary.yaml is not a UTF-8 text file"):
        C.resolve(str(tmp_path / "binary.yaml"))
    with pytest.raises(C.ConfigError, match=f"config file {tmp_path} is not a file"):
        C.resolve(str(tmp_path))
    with pytest.raises(C.ConfigError, match="must hold a mapping"):
        C.resolve(write(tmp_path, "- a\n- b\n"))


def test_yaml_is_read_safely(tmp_path):
    """yaml.safe_load: a Python object tag is an error, never executed."""
    with pytest.raises(C.ConfigError, match="is not valid YAML"):
        C.resolve(write(tmp_path, BASE + "seed: !!python/object/apply:os.system ['true']\n"))


def test_overrides_parse_values_as_yaml():
    assert C.parse_override("crop_scale=[0.5, 1.0]") == ("crop_scale", [0.5, 1.0])
    assert C.parse_override("clip_grad_norm=null") == ("clip_grad_norm", None)
    with pytest.raises(C.ConfigError, match="expects key=value"):
        C.parse_override("epochs")
    with pytest.raises(C.ConfigError, match="command line: unknown key 'epoch'"):
        C.resolve(DEFAULT_CONFIG, [C.parse_override("epoch=3")])


def test_saved_config_round_trips(tmp_path):
    cfg = C.resolve(DEFAULT_CONFIG)
    C.save(cfg, str(tmp_path / "config.yaml"))
    assert C.resolve(str(tmp_path / "config.yaml")) == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["model"] == "acmix_resnet_tiny"
