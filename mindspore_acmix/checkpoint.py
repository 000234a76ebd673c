"""Writing and reading .ckpt files: atomic, self-checking writes and errors that say what
is wrong."""
import os

import mindspore as ms
from mindspore import Tensor

from . import atomic

# The first entry of every checkpoint we write: how many entries the file holds. A file cut
# short at an entry boundary still parses (MindSpore's CRC record is at the end and goes with
# the cut); the count tells the cut apart from a complete file.
ENTRY_COUNT = "ckpt_entries"
CRC_RECORD = b"crc_num"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for the network at hand."""


# EMA copies of the weights are saved as ema.<parameter name> (MindCV's convention)
EMA_PREFIX = "ema."


def _first(names, limit=5):
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def read_checkpoint(path):
    """Parameter dict of a .ckpt file, or CheckpointError for a missing, empty or corrupt one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        # files without a CRC record (written elsewhere) load as before
        params = ms.load_checkpoint(path, crc_check=True)
    except (ValueError, RuntimeError, TypeError, OSError):
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: it cannot be parsed "
                              "or fails its CRC check") from None
    if not params:
        raise CheckpointError(f"checkpoint {path} holds no parameters")
    if ENTRY_COUNT in params:
        expected = int(params.pop(ENTRY_COUNT).asnumpy())
        if len(params) + 1 != expected:
            raise CheckpointError(f"checkpoint {path} is truncated: it holds {len(params) + 1} "
                                  f"of its {expected} entries")
        if not _ends_with_crc(path):
            raise CheckpointError(f"checkpoint {path} is truncated: its CRC record is missing")
    return params


def _ends_with_crc(path):
    """MindSpore appends the CRC as raw bytes: b"crc_num", padding, 4 bytes of checksum."""
    with open(path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(path) - 32))
        return CRC_RECORD in fh.read()


def is_training_state(key, value, net_names):
    """True for what a training checkpoint holds besides the network: run-level entries
    without a module path (epoch, global_step, momentum, ...) and optimizer slots named
    `<slot>.<network parameter>` (moments.conv1.weight, adam_m.fc.bias, ...)."""
    if "." not in key or not hasattr(value, "shape"):
        return True
    prefix, _, rest = key.partition(".")
    return rest in net_names


def check_state_dict(net, params, source):
    """Raise CheckpointError unless `params` covers every network parameter with its shape."""
    net_params = {p.name: p for p in net.get_parameters()}
    for name, p in net_params.items():
        if name in params and tuple(params[name].shape) != tuple(p.shape):
            raise CheckpointError(
                f"{source} does not fit this network: parameter {name} has shape "
                f"{tuple(params[name].shape)} there but {tuple(p.shape)} here "
                "(a checkpoint of another architecture or class count?)")
    missing = set(net_params) - set(params)
    if missing:
        raise CheckpointError(f"{source} lacks {len(missing)} parameters of this network: "
                              f"{_first(missing)}")
    unexpected = [k for k, v in params.items()
                  if k not in net_params and not is_training_state(k, v, net_params)]
    if unexpected:
        raise CheckpointError(f"{source} holds {len(unexpected)} parameters this network does "
                              f"not have: {_first(unexpected)}")


def describe(path, params, model=None):
    """How errors name a checkpoint: with the model it records when that is not `model`
    (the config's), which is then most likely what is wrong."""
    saved = params.get("model")
    if model and isinstance(saved, str) and saved != model:
        return f"checkpoint {os.fspath(path)} (a checkpoint of {saved}; the config says {model})"
    return f"checkpoint {os.fspath(path)}"


def load_network_checkpoint(net, path, model=None, ema=False):
    """Load the network part of a .ckpt into `net`, strictly (see check_state_dict); `model`
    (the configured name) is named in errors when the checkpoint records another; with ema,
    its EMA weights (the `ema.<name>` entries of a run trained with ema: true)."""
    params = read_checkpoint(path)
    if ema:
        params = {k[len(EMA_PREFIX):]: v for k, v in params.items() if k.startswith(EMA_PREFIX)}
        if not params:
            raise CheckpointError(f"checkpoint {os.fspath(path)} holds no EMA weights (it was "
                                  "not trained with ema: true)")
    check_state_dict(net, params, describe(path, params, model))
    ms.load_param_into_net(net, {p.name: params[p.name] for p in net.get_parameters()},
                           strict_load=True)
    return net


# how a segmentor (or detector) names its backbone's parameters: backbone.<backbone name>
BACKBONE_PREFIX = "backbone."


def load_backbone_checkpoint(net, path, log=print):
    """Load a classification checkpoint (ours, or one converted from the official PyTorch
    code by `python -m mindspore_acmix.convert`) into `net`, a features_only backbone,
    strictly: every backbone parameter must be in the file, with its shape; the entries the
    dense backbone drops (the classifier and the family's classification-only parameters,
    e.g. Swin's final norm, PVT's class token: `net.classification_only_params`) are
    skipped and named in one `log` line; any other entry the backbone lacks is an error.
    Only `net.dense_only_params` (e.g. Swin's output norms) may be absent: they keep their
    initialisation. A dense model's checkpoint whose keys carry `backbone.` (a segmentor's)
    loads its backbone entries, dense-only ones included. Training state (optimizer slots,
    EMA copies, run metadata) is ignored. Returns `net`."""
    if not getattr(net, "features_only", False):
        raise CheckpointError(f"load_backbone_checkpoint needs a features_only backbone, got "
                              f"{type(net).__name__} in classification mode (use "
                              "load_network_checkpoint)")
    source = f"checkpoint {os.fspath(path)}"
    params = read_checkpoint(path)
    if any(k.startswith(BACKBONE_PREFIX) for k in params):
        params = {k[len(BACKBONE_PREFIX):]: v for k, v in params.items()
                  if k.startswith(BACKBONE_PREFIX)}
    net_params = {p.name: p for p in net.get_parameters()}
    dense_only = set(net.dense_only_params)
    dropped = set(net.classification_only_params)
    classification_names = (set(net_params) - dense_only) | dropped
    for name, p in net_params.items():
        if name in params and tuple(params[name].shape) != tuple(p.shape):
            raise CheckpointError(
                f"{source} does not fit this backbone: parameter {name} has shape "
                f"{tuple(params[name].shape)} there but {tuple(p.shape)} here (a checkpoint of "
                "another architecture or size?)")
    missing = set(net_params) - dense_only - set(params)
    if missing:
        raise CheckpointError(f"{source} lacks {len(missing)} parameters of this backbone: "
                              f"{_first(missing)}")
    unexpected = [k for k, v in params.items()
                  if k not in net_params and k not in dropped
                  and not is_training_state(k, v, classification_names)]
    if unexpected:
        raise CheckpointError(f"{source} holds {len(unexpected)} parameters this backbone "
                              f"does not have: {_first(unexpected)}")
    ms.load_param_into_net(net, {n: params[n] for n in net_params if n in params},
                           strict_load=True)
    skipped = sorted(dropped & set(params))
    kept = sorted(dense_only - set(params))
    log(f"backbone: loaded {len(net_params) - len(kept)} parameters from {source}"
        + (f"; dropped (classification only): {', '.join(skipped)}" if skipped else "")
        + (f"; left at their initialisation (dense mode only): {', '.join(kept)}"
           if kept else ""))
    return net


def save_checkpoint_atomic(save_obj, path, append_dict=None):
    """Write a .ckpt (a Cell or a list of {"name", "data"} entries, plus scalar metadata) so
    that `path` only ever holds a complete file: a temporary file beside it, fsync, rename,
    fsync of the directory. The file carries a CRC and its entry count (see read_checkpoint)."""
    if isinstance(save_obj, ms.nn.Cell):
        save_obj = [{"name": p.name, "data": p} for p in save_obj.get_parameters()]
    append_dict = append_dict or {}
    count = Tensor(len(save_obj) + len(append_dict) + 1, ms.int64)
    entries = [{"name": ENTRY_COUNT, "data": count}] + list(save_obj)
    with atomic.writing(path) as tmp:
        ms.save_checkpoint(entries, tmp, append_dict=append_dict or None, crc_check=True)
    return path
