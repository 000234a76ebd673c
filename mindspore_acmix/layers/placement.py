"""Implementations chosen for the device a network runs on, not only the one it is built on.

ACmix (attn_impl) and SameConv2d (conv_impl) resolve "auto" for the device target current
when they are built. The README's layer snippet builds before any device is set, and a user
may build a model and then call ms.set_device: so each such cell remembers the target it was
placed for and the implementation it was asked for, and

- called directly (a top-level cell, or any cell in PyNative mode), it re-places itself for
  the current target first (`DevicePlaced.__call__`);
- inside a compiled graph, where MindSpore never runs a sub-cell's __call__, its construct
  calls `check_placement`, which runs while the graph compiles and fails with one line naming
  both targets (call `place_network(net)` after setting the device, or build after);
- train.py, eval.py and export.py build after setting the device and call `place_network`.

An implementation asked for by name stays unless it cannot run on the target ("aot" off CPU:
a ValueError naming both).
"""
import mindspore as ms
from mindspore.ops import constexpr


def current_device():
    return ms.get_context("device_target")


def place_network(net, device=None):
    """Re-resolve, for `device` (default: the current target), every implementation of `net`
    that was left to "auto"; returns net."""
    device = device or current_device()
    for _, cell in net.cells_and_names():
        if isinstance(cell, DevicePlaced):
            cell.place(device)
    return net


def implementations(net):
    """{"attention": [names], "convolution": [names]} that the cells of `net` use."""
    found = {"attention": set(), "convolution": set()}
    for _, cell in net.cells_and_names():
        if isinstance(cell, DevicePlaced):
            kind, name = cell.implementation()
            found[kind].add(name)
    return {kind: sorted(names) for kind, names in found.items()}


def describe_implementations(net):
    """One phrase for the log, e.g. "attention halo, convolutions native"."""
    impls = implementations(net)
    parts = []
    if impls["attention"]:
        parts.append("attention " + "+".join(impls["attention"]))
    if impls["convolution"]:
        parts.append("convolutions " + "+".join(impls["convolution"]))
    return ", ".join(parts) or "no ACmix attention or SameConv2d convolutions"


@constexpr
def check_placement(what, placed_for, adaptive):
    """Compile-time guard in construct (constexpr: runs in Python while the graph compiles,
    adds no operator): the cell's implementation was resolved for `placed_for`."""
    now = current_device()
    if adaptive and now != placed_for:
        raise ValueError(
            f"{what} was built for device target {placed_for} but runs under {now}: set the "
            "device before building the network, or call "
            "mindspore_acmix.layers.place_network(net) after setting it")
    return True


class DevicePlaced:
    """Mixin of the cells whose implementation depends on the device (first base, before
    nn.Cell). Subclasses set self.placed_for and define place(device), implementation()
    and the `adaptive` property (whether a change of target matters)."""

    def __call__(self, *args, **kwargs):
        if self.placed_for != current_device():
            place_network(self)
        return super().__call__(*args, **kwargs)
