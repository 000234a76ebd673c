"""Reading network checkpoints with errors that say what is wrong."""
import os

import mindspore as ms


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for the network at hand."""


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
        params = ms.load_checkpoint(path)
    except (ValueError, RuntimeError, TypeError, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt: it could not be parsed ({exc})") from None
    if not params:
        raise CheckpointError(f"checkpoint {path} holds no parameters")
    return params


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


def load_network_checkpoint(net, path):
    """Load the network part of a .ckpt into `net`, strictly (see check_state_dict)."""
    params = read_checkpoint(path)
    check_state_dict(net, params, f"checkpoint {os.fspath(path)}")
    ms.load_param_into_net(net, {p.name: params[p.name] for p in net.get_parameters()},
                           strict_load=True)
    return net


def save_checkpoint_atomic(save_obj, path, append_dict=None):
    """Write a .ckpt so that `path` only ever holds a complete file: write a temporary
    file beside it, fsync, then rename over `path`."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.ckpt"
    try:
        ms.save_checkpoint(save_obj, tmp, append_dict=append_dict)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path
