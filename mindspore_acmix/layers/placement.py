"""One way to place a layer for the device it runs on, not only the one it is built on.

Every layer with an implementation choice (ACmix: attention, SAM: SAN's operators,
SameConv2d: convolution; mindspore_acmix.implementations lists what exists) is a
DevicePlaced cell: it remembers the implementation it was asked for and the device target
it was placed for. The README's layer snippet builds before any device is set, and a user
may build a model and then call ms.set_device, so

- called directly (a top-level cell, or any cell in PyNative mode), it re-places itself for
  the current target first (`DevicePlaced.__call__`);
- inside a compiled graph, where MindSpore never runs a sub-cell's __call__, its construct
  calls `check_placement`, which runs while the graph compiles and fails with one line naming
  both targets (call `place_network(net)` after setting the device, or build after);
- train.py, eval.py and export.py build after setting the device and call `place_network`;
  export calls `make_portable` (the graph-operator implementations everywhere).

An implementation asked for by name stays unless it cannot run on the target ("aot" off CPU:
a ValueError naming both).
"""
import mindspore as ms
from mindspore.ops import constexpr

from .. import implementations as registry


def current_device():
    return ms.get_context("device_target")


def placed_cells(net):
    return [cell for _, cell in net.cells_and_names() if isinstance(cell, DevicePlaced)]


def place_network(net, device=None):
    """Re-resolve, for `device` (default: the current target), every implementation of `net`
    that was left to "auto"; returns net."""
    device = device or current_device()
    for cell in placed_cells(net):
        cell.place(device)
    return net


def make_portable(net):
    """Switch every layer of `net` to its kind's portable implementation ("halo" attention
    and SAN operators, "native" convolutions: same parameters, same numbers); returns net."""
    for cell in placed_cells(net):
        cell.choose(registry.KINDS[cell.impl_kind].portable)
    return net


def implementations(net):
    """{kind: [names]} that the cells of `net` use, every kind listed."""
    found = {kind: set() for kind in registry.KINDS}
    for cell in placed_cells(net):
        found[cell.impl_kind].add(cell.impl)
    return {kind: sorted(names) for kind, names in found.items()}


_PHRASES = {"attention": "attention", "san": "SAN operators", "convolution": "convolutions"}


def describe_implementations(net):
    """One phrase for the log, e.g. "attention halo, convolutions native"."""
    parts = [f"{_PHRASES[kind]} {'+'.join(names)}"
             for kind, names in implementations(net).items() if names]
    return ", ".join(parts) or "no layer with an implementation choice"


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
    """Mixin of the cells with an implementation choice (first base, before nn.Cell).

    A subclass sets the class attribute impl_kind (a key of registry.KINDS), calls
    init_placement(request) in __init__ and defines use_implementation(name, device), which
    builds or switches to `name` (called on every placement); its construct calls
    check_placement(type name, self.placed_for, self.adaptive)."""

    impl_kind = None

    def init_placement(self, request):
        registry.resolve(self.impl_kind, request)  # validates the name first
        self.impl_request, self.impl, self.placed_for = request, None, None
        self.place(current_device())

    def place(self, device):
        """Resolve the requested implementation for `device` and use it."""
        kind = registry.KINDS[self.impl_kind]
        if self.impl_request == kind.cpu_only and device != "CPU":
            raise ValueError(
                f"{type(self).__name__} was built with {kind.option}='{kind.cpu_only}' (the "
                f"C++ CPU kernel) for device target {self.placed_for} but runs under {device}: "
                f"use {kind.option}='auto' or '{kind.portable}'")
        self.use_implementation(registry.resolve(self.impl_kind, self.impl_request,
                                                        device), device)
        self.placed_for = device

    def choose(self, name):
        """Ask for implementation `name` (or "auto") from now on, placed for the current
        target (same parameters, same numbers)."""
        registry.resolve(self.impl_kind, name)
        self.impl_request = name
        self.place(current_device())

    def implementation(self):
        return self.impl_kind, self.impl

    @property
    def adaptive(self):
        """Whether a change of device target matters: "auto", or a CPU-only kernel."""
        return self.impl_request == "auto" or \
            self.impl == registry.KINDS[self.impl_kind].cpu_only

    def __call__(self, *args, **kwargs):
        if self.placed_for != current_device():
            place_network(self)
        return super().__call__(*args, **kwargs)
