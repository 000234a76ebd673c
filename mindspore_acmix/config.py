"""Training configuration: one flat YAML recipe per model, validated strictly.

Every key is declared in SCHEMA with its type, default and allowed values, so an unknown
key, a wrong type or an impossible value is one clear ConfigError before any heavy work.
Command-line flags override the file; the resolved config is saved next to the outputs.
"""
import difflib
import math
import os
import re

import yaml

from . import atomic
from .models.base import IMAGENET_MEAN, IMAGENET_STD
from .factory import get_default_cfg, is_model, list_models


class ConfigError(ValueError):
    """A configuration that cannot be run."""


TASKS = ("classification", "segmentation", "detection")
CLS, SEG, DET = ("classification",), ("segmentation",), ("detection",)


class Field:
    """One config key: `kind` is int, float, bool, str, list or dict; `check(value)` returns
    an error text or None; `nullable` admits null; `tasks` are the tasks it applies to (a
    key of another task is an error)."""

    def __init__(self, kind, default, doc, check=None, nullable=False, choices=None,
                 tasks=TASKS):
        self.kind, self.default, self.doc = kind, default, doc
        self.check, self.nullable, self.choices, self.tasks = check, nullable, choices, tasks


def positive(v):
    return None if v > 0 else "must be > 0"


def non_negative(v):
    return None if v >= 0 else "must be >= 0"


def probability(v):
    return None if 0 <= v <= 1 else "must be between 0 and 1"


def pair_in_unit(v):
    if len(v) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return "must be a list of two numbers"
    return None if 0 < v[0] <= v[1] <= 1 else "must satisfy 0 < low <= high <= 1"


def positive_pair(v):
    if len(v) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return "must be a list of two numbers"
    return None if 0 < v[0] <= v[1] else "must satisfy 0 < low <= high"


def amp_level(v):
    if v in ("O1", "O3"):
        return ("is not supported: MindSpore's O1 inserts no casts into these models and O3 "
                "runs norms and the attention softmax in float16; use O2 (or auto)")
    return None if v in ("auto", "O0", "O2") else "must be one of auto, O0, O2"


def three_numbers(v):
    if len(v) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return "must be a list of three numbers"
    return None


def three_positive(v):
    return three_numbers(v) or (None if all(x > 0 for x in v) else "must all be > 0")


def positive_ints(n):
    def check(v):
        if len(v) != n or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0
                                  for x in v):
            return f"must be a list of {n} positive integers"
        return None
    return check


def strings(v):
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


def registered_model(v):
    return None if is_model(v) else (
        f"is not a registered model; known models: {', '.join(list_models())}")


SCHEMA = {
    "task": Field(str, "classification", "classification, segmentation or detection (each has its own "
                  "keys below)", choices=TASKS),
    # model
    "model": Field(str, None, "registered model name (segmentation: the backbone)",
                   registered_model),
    "model_kwargs": Field(dict, {}, "extra keyword arguments of the model (e.g. attn_impl; "
                          "segmentation: of the backbone, e.g. drop_path_rate)"),
    "num_classes": Field(int, None, "classes of the classifier head (segmentation: of the "
                         "masks, without ignore_index)", positive),
    # data
    "dataset": Field(str, "imagefolder", "classification: digits (built in) or imagefolder; "
                     "segmentation: digits (built-in canvases), ade20k or segfolder; "
                     "detection: digits (built-in canvases with boxes) or coco",
                     choices=("digits", "imagefolder", "ade20k", "segfolder", "coco")),
    "data_dir": Field(str, None, "the dataset's root folder (imagefolder: train/ and val/; "
                      "ade20k: images/ and annotations/; segfolder: images/ and masks/); for "
                      "digits, where the data is written (null: the user cache)", nullable=True),
    "image_size": Field(int, None, "train crop and eval crop size (null: the model's "
                        "default_cfg input size)", positive, nullable=True, tasks=CLS),
    "eval_resize": Field(int, None, "eval: resize the short side to this, then center crop "
                         "(null: image_size / the model's crop_pct)", positive, nullable=True,
                         tasks=CLS),
    "crop_scale": Field(list, [0.08, 1.0], "RandomResizedCrop area range", pair_in_unit, tasks=CLS),
    "crop_ratio": Field(list, [0.75, 1.3333333], "RandomResizedCrop aspect range",
                        positive_pair, tasks=CLS),
    "hflip": Field(float, 0.5, "probability of a horizontal flip", probability),
    "interpolation": Field(str, None, "resize interpolation (null: the model's)",
                           choices=("bilinear", "bicubic"), nullable=True, tasks=CLS),
    "mean": Field(list, None, "per-channel mean on the 0-255 scale (null: the model's)",
                  three_numbers, nullable=True),
    "std": Field(list, None, "per-channel std on the 0-255 scale (null: the model's)",
                 three_positive, nullable=True),
    "color_jitter": Field(float, 0.0, "brightness/contrast/saturation jitter (0: off)",
                          non_negative, tasks=CLS),
    "randaugment": Field(int, None, "RandAugment magnitude with 2 ops a image (null: off)",
                         lambda v: None if 0 <= v <= 30 else "must be in [0, 30]", nullable=True,
                         tasks=CLS),
    "random_erasing": Field(float, 0.0, "probability of erasing a random box", probability,
                            tasks=CLS),
    "mixup": Field(float, 0.0, "mixup alpha (0: off)", non_negative, tasks=CLS),
    "cutmix": Field(float, 0.0, "cutmix alpha (0: off)", non_negative, tasks=CLS),
    "label_smoothing": Field(float, 0.1, "label smoothing", lambda v: None if 0 <= v < 1 else
                             "must be in [0, 1)", tasks=CLS),
    "num_workers": Field(int, 4, "data pipeline workers", positive),
    "skip_bad_images": Field(bool, True, "skip unreadable images (counted in the log) instead "
                             "of stopping"),
    # optimisation
    "batch_size": Field(int, 128, "images per device per step", positive),
    "epochs": Field(int, 90, "epochs of the whole run (a resumed run finishes these)", positive,
                    tasks=CLS + DET),
    "optimizer": Field(str, "momentum", "momentum (SGD) or adamw",
                       choices=("momentum", "adamw")),
    "lr": Field(float, 0.1, "peak learning rate for lr_batch_size images per step", positive),
    "lr_batch_size": Field(int, 256, "the lr is scaled linearly from this to the global batch",
                           positive),
    "momentum": Field(float, 0.9, "SGD momentum", probability),
    "nesterov": Field(bool, False, "Nesterov momentum"),
    "betas": Field(list, [0.9, 0.999], "AdamW betas", lambda v: None if len(v) == 2 and all(
        isinstance(b, (int, float)) and 0 <= b < 1 for b in v) else "must be two numbers in "
        "[0, 1)"),
    "weight_decay": Field(float, 1e-4, "weight decay (never on norms, biases, ACmix rates, "
                          "position tables)", non_negative),
    "warmup_epochs": Field(float, 5.0, "linear warmup length in epochs", non_negative, tasks=CLS),
    "warmup_start_factor": Field(float, 0.25, "warmup starts at lr * this", probability),
    "min_lr": Field(float, 0.0, "cosine floor (absolute, after lr scaling)", non_negative),
    "clip_grad_norm": Field(float, None, "clip gradients to this global norm", positive,
                            nullable=True),
    "accumulate_steps": Field(int, 1, "micro-batches per update (gradient accumulation; the "
                              "lr is scaled to batch_size * devices * this)", positive, tasks=CLS),
    "ema": Field(bool, False, "keep an exponential moving average of the weights, evaluated "
                 "and checkpointed alongside (ema.* entries)", tasks=CLS),
    "ema_decay": Field(float, 0.9998, "EMA decay per update",
                       lambda v: None if 0 < v < 1 else "must be in (0, 1)", tasks=CLS),
    "sync_bn": Field(bool, False, "SyncBatchNorm over all ranks under msrun (Ascend/GPU)"),
    "amp_level": Field(str, "auto", "O0 (fp32) | O2 (fp16, norms and softmax in fp32) | auto "
                       "(O2 on Ascend/GPU, O0 on CPU); see mindspore_acmix/engine/amp.py",
                       amp_level),
    # run
    "device": Field(str, "auto", "Ascend | GPU | CPU | auto (what is available)",
                    choices=("auto", "Ascend", "GPU", "CPU")),
    "seed": Field(int, 0, "seed of weights, data order, augmentation and DropPath/dropout "
                  "(with rank, epoch and step)", non_negative),
    "output_dir": Field(str, "outputs/run", "checkpoints, logs and the resolved config"),
    "keep_checkpoints": Field(int, 3, "epoch checkpoints kept besides last and best", positive),
    "log_interval": Field(int, 20, "steps between progress lines, which are also the only "
                          "times the host waits for the loss", positive),
    # segmentation (docs/segmentation-training.md)
    "head": Field(str, "semantic_fpn", "decode head: semantic_fpn (FPN neck + FPN head) or "
                  "upernet (PPM + FPN fuse)", choices=("semantic_fpn", "upernet"), tasks=SEG),
    "aux_head": Field(bool, None, "the auxiliary FCN head on stage 3 in training (null: the "
                      "head's default, on for upernet)", nullable=True, tasks=SEG),
    "aux_weight": Field(float, 0.4, "loss weight of the auxiliary head", non_negative,
                        tasks=SEG),
    "class_weight": Field(list, None, "loss weight of each class (mmseg CrossEntropyLoss's "
                          "class_weight: a pixel's loss times its class's weight; null: all "
                          "1)", lambda v: None if all(isinstance(w, (int, float)) and not
                                                      isinstance(w, bool) and w >= 0 for w in v)
                          else "must be non-negative numbers", nullable=True, tasks=SEG),
    "pretrained_backbone": Field(str, None, "classification checkpoint loaded strictly into "
                                 "the backbone (its classifier dropped)", nullable=True,
                                 tasks=SEG + DET),
    "max_iters": Field(int, 40000, "iterations (updates) of the whole run", positive,
                       tasks=SEG),
    "warmup_iters": Field(int, 0, "linear warm-up iterations (from lr * warmup_start_factor)",
                          non_negative, tasks=SEG + DET),
    "poly_power": Field(float, 1.0, "poly decay: lr * (1 - iter / max_iters) ** poly_power "
                        "down to min_lr", positive, tasks=SEG),
    "eval_interval": Field(int, 4000, "iterations between evaluations (each also writes a "
                           "checkpoint); max_iters must be a multiple", positive, tasks=SEG),
    "crop_size": Field(list, [512, 512], "training crop [height, width] (padded with ignore "
                       "where the image is smaller)", positive_ints(2), tasks=SEG),
    "scale": Field(list, [2048, 512], "image scale [long, short] (mmseg img_scale): training "
                   "resizes to it times ratio_range, evaluation to it", positive_ints(2),
                   tasks=SEG),
    "ratio_range": Field(list, [0.5, 2.0], "random resize ratio range of training",
                         positive_pair, tasks=SEG),
    "cat_max_ratio": Field(float, 0.75, "random crop: redraw (up to 10 times) while one "
                           "class covers more than this of the crop", lambda v: None if
                           0 < v <= 1 else "must be in (0, 1]", tasks=SEG),
    "photometric": Field(bool, True, "photometric distortion (brightness, contrast, "
                         "saturation, hue) in training", tasks=SEG),
    "ignore_index": Field(int, 255, "mask value ignored by the loss and the metric",
                          non_negative, tasks=SEG),
    "reduce_zero_label": Field(bool, None, "mask 0 becomes ignore and the rest minus one "
                               "(null: true for ade20k)", nullable=True, tasks=SEG),
    "class_names": Field(list, None, "class names for tables and figures (null: numbers; "
                         "digits: background, digit 0-9; coco: the json's category names)",
                         strings, nullable=True, tasks=SEG + DET),
    "no_decay_keys": Field(list, None, "parameters whose name holds one of these take no "
                           "weight decay (mmcv custom_keys; [] decays every parameter; null: "
                           "the model's rule: norms, biases, ACmix rates, position tables)",
                           strings, nullable=True, tasks=SEG + DET),
    "test_mode": Field(str, "whole", "evaluation inference: whole image or slide (crop_size "
                       "windows, test_stride apart, overlaps averaged)",
                       choices=("whole", "slide"), tasks=SEG),
    "test_stride": Field(list, None, "slide inference stride [height, width] (null: two "
                         "thirds of crop_size, 341 for 512 as the recipes)", positive_ints(2),
                         nullable=True, tasks=SEG),
    "test_flip": Field(bool, False, "also predict the mirrored image and average",
                       tasks=SEG),
    # detection (docs/detection.md)
    "detector": Field(str, "retinanet", "detector (mindspore_acmix.create_detector's head)",
                      choices=("retinanet",), tasks=DET),
    "detector_kwargs": Field(dict, {}, "create_detector arguments: fpn_channels, "
                             "stacked_convs, start_level, num_outs, octave_base_scale, "
                             "scales_per_octave, ratios, pos_iou_thr, neg_iou_thr, nms_pre, "
                             "score_thr, nms_iou, max_per_img", tasks=DET),
    "lr_steps": Field(list, [8, 11], "epochs after which the lr is multiplied by 0.1 (mmdet "
                      "step policy)", lambda v: None if all(isinstance(e, int) and e > 0
                                                            for e in v) else
                      "must be positive epoch numbers", tasks=DET),
    "img_scale": Field(list, [1333, 800], "resize keeping the ratio to [long, short] at most",
                       positive_ints(2), tasks=DET),
    "pad_size": Field(list, [1344, 1344], "every image is zero-padded to [height, width] (one "
                      "compiled shape; multiples of the largest stride)", positive_ints(2),
                      tasks=DET),
    "train_split": Field(str, "train2017", "training images under data_dir/<this>/, "
                         "annotations in data_dir/annotations/instances_<this>.json", tasks=DET),
    "val_split": Field(str, "val2017", "validation split, as train_split", tasks=DET),
}

REQUIRED = ("model", "num_classes")


def _type_name(kind):
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            list: "a list", dict: "a mapping"}[kind]


# YAML 1.1 (PyYAML) reads 1e-3 and 1e30 as strings: it wants a dot and a signed exponent
YAML11_MISSED_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def check_value(key, value, source="config"):
    """The value, type-checked and range-checked (ints are accepted as floats)."""
    field = SCHEMA[key]
    if value is None:
        if field.nullable or (field.default is None and key not in REQUIRED):
            return None
        raise ConfigError(f"{source}: {key} must not be null")
    if field.kind is float and isinstance(value, str) and YAML11_MISSED_FLOAT.match(value):
        value = float(value)
    ok = (isinstance(value, field.kind) and not (field.kind is int and isinstance(value, bool))
          or field.kind is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{source}: {key} must be {_type_name(field.kind)}, got {value!r} "
                          f"({type(value).__name__})")
    if field.kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {key} must be finite, got {value}")
    if field.choices is not None and value not in field.choices:
        raise ConfigError(f"{source}: {key} must be one of {', '.join(field.choices)}, "
                          f"got {value!r}")
    problem = field.check(value) if field.check else None
    if problem:
        raise ConfigError(f"{source}: {key} {problem}, got {value!r}")
    return value


def _unknown(key, source):
    close = difflib.get_close_matches(str(key), SCHEMA, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ConfigError(f"{source}: unknown key {key!r}{hint}")


def read_yaml(path):
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path} " + ("is not a file" if os.path.exists(path)
                                                     else "does not exist"))
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not a UTF-8 text file") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def parse_override(text):
    """'key=value' with the value read as YAML (so 0.1, true, [1, 2] and null work)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text}: the value is not valid YAML: {exc}") from None


PATH_KEYS = ("data_dir", "output_dir", "pretrained_backbone")  # relative to the working directory


def task_keys(task):
    """The config keys of a task, in schema order."""
    return [k for k, f in SCHEMA.items() if task in f.tasks]


def resolve(path=None, overrides=()):
    """Defaults, then the file, then (key, value) overrides: a validated dict of every key of
    the config's task (a key of another task is an error)."""
    layers = []
    if path is not None:
        layers.append((path, list(read_yaml(path).items())))
    layers.append(("command line", list(overrides)))
    task = SCHEMA["task"].default
    for source, items in layers:
        for key, value in items:
            if key == "task":
                task = check_value(key, value, source)
    cfg = {k: SCHEMA[k].default for k in task_keys(task)}
    for source, items in layers:
        for key, value in items:
            if key not in SCHEMA:
                raise _unknown(key, source)
            if task not in SCHEMA[key].tasks:
                raise ConfigError(f"{source}: {key} is a key of task {SCHEMA[key].tasks[0]}; "
                                  f"this config's task is {task}")
            cfg[key] = check_value(key, value, source)
    for key in REQUIRED:
        if cfg[key] is None:
            raise ConfigError(f"{path or 'config'}: {key} is required")
    if task == "segmentation":
        check_segmentation(cfg, path or "config")
    elif task == "detection":
        check_detection(cfg, path or "config")
    else:
        check_classification(cfg, path or "config")
    if not cfg["output_dir"].strip():
        raise ConfigError(f"{path or 'config'}: output_dir must not be empty")
    # absolute from here on: the scripts run MindSpore in a scratch working directory
    for key in PATH_KEYS:
        if cfg.get(key):
            cfg[key] = os.path.abspath(os.path.expanduser(cfg[key]))
    if os.path.exists(cfg["output_dir"]) and not os.path.isdir(cfg["output_dir"]):
        raise ConfigError(f"{path or 'config'}: output_dir {cfg['output_dir']} exists and is "
                          "not a directory")
    return cfg


def check_classification(cfg, where):
    if cfg["dataset"] not in ("digits", "imagefolder"):
        raise ConfigError(f"{where}: dataset {cfg['dataset']} is segmentation data (task: "
                          "segmentation); classification reads digits or imagefolder")
    if cfg["dataset"] == "imagefolder" and not cfg["data_dir"]:
        raise ConfigError(f"{where}: dataset imagefolder needs data_dir "
                          "(a folder holding train/ and val/)")
    if cfg["dataset"] == "digits" and cfg["num_classes"] != 10:
        raise ConfigError(f"{where}: the digits data has 10 classes, "
                          f"num_classes is {cfg['num_classes']}")
    fill_from_default_cfg(cfg)
    if cfg["eval_resize"] < cfg["image_size"]:
        raise ConfigError(f"{where}: eval_resize ({cfg['eval_resize']}) must be at "
                          f"least image_size ({cfg['image_size']})")


# classes of the segmentation datasets that fix them
SEGMENTATION_CLASSES = {"digits": 11, "ade20k": 150}


def check_segmentation(cfg, where):
    dataset = cfg["dataset"]
    if dataset == "imagefolder":
        raise ConfigError(f"{where}: dataset imagefolder is classification data; segmentation "
                          "reads digits, ade20k or segfolder")
    if dataset != "digits" and not cfg["data_dir"]:
        raise ConfigError(f"{where}: dataset {dataset} needs data_dir (a folder holding "
                          "images/ and " + ("annotations/)" if dataset == "ade20k" else "masks/)"))
    fixed = SEGMENTATION_CLASSES.get(dataset)
    if fixed is not None and cfg["num_classes"] != fixed:
        raise ConfigError(f"{where}: the {dataset} data has {fixed} classes, num_classes is "
                          f"{cfg['num_classes']}")
    if cfg["max_iters"] % cfg["eval_interval"]:
        raise ConfigError(f"{where}: max_iters ({cfg['max_iters']}) must be a multiple of "
                          f"eval_interval ({cfg['eval_interval']})")
    if cfg["warmup_iters"] >= cfg["max_iters"]:
        raise ConfigError(f"{where}: warmup_iters ({cfg['warmup_iters']}) must be less than "
                          f"max_iters ({cfg['max_iters']})")
    if cfg["ignore_index"] < cfg["num_classes"]:
        raise ConfigError(f"{where}: ignore_index ({cfg['ignore_index']}) must not be a class "
                          f"(0-{cfg['num_classes'] - 1})")
    if cfg["test_stride"] is None:
        cfg["test_stride"] = [2 * c // 3 for c in cfg["crop_size"]]
    if any(s > c for s, c in zip(cfg["test_stride"], cfg["crop_size"])):
        raise ConfigError(f"{where}: test_stride {cfg['test_stride']} is larger than crop_size "
                          f"{cfg['crop_size']}: slide inference would leave pixels uncovered")
    for key, items in (("class_weight", "weights"), ("class_names", "names")):
        values = cfg[key]
        if values is not None and len(values) != cfg["num_classes"]:
            raise ConfigError(f"{where}: {key} has {len(values)} {items} for "
                              f"{cfg['num_classes']} classes")
    names = cfg["class_names"]
    if dataset == "digits" and names is None:
        from .data.digit_canvases import CLASS_NAMES
        cfg["class_names"] = list(CLASS_NAMES)
    fill_normalisation(cfg)


def check_detection(cfg, where):
    dataset = cfg["dataset"]
    if dataset not in ("digits", "coco"):
        raise ConfigError(f"{where}: dataset {dataset} is not detection data; detection reads "
                          "digits or coco")
    if dataset == "coco" and not cfg["data_dir"]:
        raise ConfigError(f"{where}: dataset coco needs data_dir (a folder holding annotations/"
                          f"instances_{cfg['train_split']}.json and {cfg['train_split']}/)")
    if dataset == "digits":
        if cfg["num_classes"] != 10:
            raise ConfigError(f"{where}: the digits data has 10 classes, num_classes is "
                              f"{cfg['num_classes']}")
        cfg["train_split"], cfg["val_split"] = "train", "val"
        if cfg["class_names"] is None:
            cfg["class_names"] = [f"digit {d}" for d in range(10)]
    names = cfg["class_names"]
    if names is not None and len(names) != cfg["num_classes"]:
        raise ConfigError(f"{where}: class_names has {len(names)} names for "
                          f"{cfg['num_classes']} classes")
    if any(p % 32 for p in cfg["pad_size"]):
        raise ConfigError(f"{where}: pad_size {cfg['pad_size']} must be multiples of 32 (the "
                          "backbones' largest stride)")
    if sorted(cfg["lr_steps"]) != cfg["lr_steps"]:
        raise ConfigError(f"{where}: lr_steps {cfg['lr_steps']} must be increasing")
    fill_normalisation(cfg)


def fill_from_default_cfg(cfg):
    """The data keys a config leaves open (null) from the model's default_cfg: input size,
    eval resize (image_size / crop_pct, as timm), interpolation, mean and std (0-255)."""
    model = get_default_cfg(cfg["model"])
    if cfg["image_size"] is None:
        cfg["image_size"] = int(model.get("input_size", (3, 224, 224))[-1])
    if cfg["eval_resize"] is None:
        cfg["eval_resize"] = int(math.floor(cfg["image_size"] / model.get("crop_pct", 0.875)))
    if cfg["interpolation"] is None:
        cfg["interpolation"] = model.get("interpolation", "bilinear")
    fill_normalisation(cfg)


def fill_normalisation(cfg):
    """mean and std (0-255) that a config leaves open from the model's default_cfg."""
    model = get_default_cfg(cfg["model"])
    for key, fallback in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
        if cfg[key] is None:
            cfg[key] = [round(255.0 * v, 4) for v in model.get(key, fallback)]


def save(cfg, path):
    """Write the resolved config (atomically) so a run can be reproduced from its outputs."""
    atomic.write_text(path, yaml.safe_dump(cfg, sort_keys=False))
