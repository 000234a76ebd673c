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
