"""Loading weights of the official PyTorch ACmix code into our networks.

Our parameters carry the official module paths; only the leaf names differ where
MindSpore's cells name them differently (BatchNorm and LayerNorm: gamma, beta,
moving_mean, moving_variance). `num_batches_tracked` has no counterpart. Buffers that
the official modules derive from the configuration (Swin's `relative_position_index`
and `attn_mask`) are constants of our cells: an official one must equal ours, an
absent one is fine.

Command line (needs PyTorch, used only to read the .pth file):

    python -m mindspore_acmix.convert --model acmix_resnet50 --input official.pth \
        --output acmix_resnet50.ckpt
    python -m mindspore_acmix.convert --model swin_acmix_tiny --input acmix_swin_tiny.pth \
        --output swin_acmix_tiny.ckpt
"""
import argparse
import os
import sys

import numpy as np
from mindspore import Tensor

# official leaf name -> our leaf names to try, in order
LEAF_NAMES = {
    "weight": ("weight", "gamma"),
    "bias": ("bias", "beta"),
    "running_mean": ("moving_mean",),
    "running_var": ("moving_variance",),
}
IGNORED_LEAVES = ("num_batches_tracked",)
# buffers our cells rebuild from their configuration and keep as constant Tensors
DERIVED_BUFFERS = ("relative_position_index", "attn_mask")
# containers under which training scripts save the weights
WRAPPER_KEYS = ("state_dict", "model")


def _to_numpy(value, key):
    if hasattr(value, "detach"):  # a torch tensor; torch itself is not imported here
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"state dict entry {key!r} is a {type(value).__name__}, "
                        "not an array or tensor")
    return value


def our_name(official_name, net_names):
    """Our parameter name for an official state_dict key, or None if the network has none."""
    prefix, _, leaf = official_name.rpartition(".")
    for candidate in LEAF_NAMES.get(leaf, (leaf,)):
        name = f"{prefix}.{candidate}" if prefix else candidate
        if name in net_names:
            return name
    return None


def check_derived_buffer(cells, key, value):
    """Compare an official derived buffer with the constant our cell rebuilt; False if the
    network has no such constant (the key is then unexpected)."""
    prefix, _, leaf = key.rpartition(".")
    ours = getattr(cells[prefix], leaf, None) if prefix in cells else None
    if ours is None:
        return False
    ours, array = ours.asnumpy(), _to_numpy(value, key)
    if ours.shape != tuple(array.shape) or not np.array_equal(ours, array):
        raise ValueError(f"state dict entry {key!r} differs from the {leaf} this network "
                         "rebuilds from its configuration (a checkpoint for another window "
                         "size or input resolution?)")
    return True


def unwrap_state_dict(obj):
    """The tensor dict inside what a training script saved: {'state_dict': ...} (ResNet
    main.py), {'model': ...} (Swin), with DataParallel's 'module.' prefix removed."""
    while isinstance(obj, dict):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not obj:
        raise ValueError("no state dict found: expected a dict of tensors, possibly under "
                         f"one of the keys {WRAPPER_KEYS}")
    if all(isinstance(k, str) and k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_torch_state_dict(net, state_dict, strict=True):
    """Copy an official-named state dict (NumPy arrays or torch tensors) into `net`.

    Every shape is checked, and with `strict` every network parameter (BatchNorm
    statistics included) must be covered and every key used, `num_batches_tracked`
    aside. Derived buffers (DERIVED_BUFFERS) are checked against the network's own and
    never required. Nothing is written unless all checks pass. Returns {official name:
    Parameter} for what was loaded.
    """
    params = {p.name: p for p in net.get_parameters()}
    cells = dict(net.cells_and_names())
    plan, unexpected, targets = [], [], {}
    for key, value in state_dict.items():
        leaf = key.rpartition(".")[2]
        if leaf in IGNORED_LEAVES:
            continue
        if leaf in DERIVED_BUFFERS and check_derived_buffer(cells, key, value):
            continue
        name = our_name(key, params)
        if name is None:
            unexpected.append(key)
            continue
        if name in targets:
            raise ValueError(f"state dict keys {targets[name]!r} and {key!r} both map to {name}")
        targets[name] = key
        array = _to_numpy(value, key)
        if tuple(array.shape) != tuple(params[name].shape):
            raise ValueError(f"state dict entry {key!r} has shape {tuple(array.shape)}, but "
                             f"parameter {name} has shape {tuple(params[name].shape)}")
        plan.append((key, name, array))
    missing = sorted(set(params) - set(targets))
    if strict and (missing or unexpected):
        problems = []
        if missing:
            problems.append(f"missing for {len(missing)} parameters: {', '.join(missing[:5])}"
                            + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys: {', '.join(unexpected[:5])}"
                            + (" ..." if len(unexpected) > 5 else ""))
        raise ValueError("state dict does not match the network: " + "; ".join(problems))
    loaded = {}
    for key, name, array in plan:
        param = params[name]
        param.set_data(Tensor(array, dtype=param.dtype))
        loaded[key] = param
    return loaded


def read_pth(path):
    """Tensors of an official .pth file, read with torch.load(weights_only=True)."""
    try:
        import torch
    except ImportError:
        raise SystemExit("error: reading .pth files needs PyTorch, which mindspore-acmix does "
                         "not install: pip install torch") from None
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        if os.path.getsize(path) == 0:
            reason = "it is empty"
        elif "Weights only load failed" in str(exc):
            # torch suggests weights_only=False here: not for files we are handed
            reason = ("it is not a PyTorch file, or it holds Python objects besides tensors, "
                      "which are not unpickled for safety")
        else:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} is not a readable PyTorch checkpoint: {reason}") from None
    return unwrap_state_dict(obj)


def main(argv=None):
    from .checkpoint import save_checkpoint_atomic
    from .factory import count_params, create_model

    parser = argparse.ArgumentParser(
        prog="python -m mindspore_acmix.convert",
        description="Convert an official PyTorch ACmix checkpoint (.pth) to a MindSpore .ckpt.")
    parser.add_argument("--model", required=True, help="registered model name, e.g. acmix_resnet50")
    parser.add_argument("--input", required=True, help="official .pth file")
    parser.add_argument("--output", required=True, help=".ckpt file to write")
    parser.add_argument("--num-classes", type=int, default=1000)
    args = parser.parse_args(argv)
    try:
        net = create_model(args.model, num_classes=args.num_classes)
        loaded = load_torch_state_dict(net, read_pth(args.input), strict=True)
        save_checkpoint_atomic(net, args.output)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"loaded {len(loaded)} tensors ({count_params(net):,} trainable parameters) "
          f"into {args.model}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
