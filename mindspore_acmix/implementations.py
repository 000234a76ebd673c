"""Every choice between implementations of a layer, in one place: what exists, what "auto"
stands for on a device, and the one warning when the C++ CPU kernels are unavailable.

    kind          option     implementations                  "auto" on CPU / elsewhere
    attention     attn_impl  halo, aot, unfold                aot (if it builds) / halo
    san           san_impl   halo, aot, unfold                aot (if it builds) / halo
    convolution   conv_impl  native, matmul                   matmul / native

"halo" and "native" are the portable graph-operator paths (Ascend, GPU, every export);
"aot" the C++ CPU kernels (mindspore_acmix.cpu), used on CPU only; "matmul" convolutions run
anywhere, with the cpu tap kernels when they build; "unfold" the plain references
(ops.references). Layers with a choice are DevicePlaced (layers.placement): they resolve
"auto" again for the device they run on.
"""
import importlib
import warnings

import mindspore as ms

from .cpu.build import kernel_unavailable_reason


class Kind:
    """One kind of choice: the constructor option that names it, its implementations
    ({name: "module:Class"}, None where the layer switches internally), the portable one
    and the CPU one (with the C++ kernel source it needs, if any)."""

    def __init__(self, option, classes, portable, cpu, kernel=None):
        self.option, self.classes, self.portable, self.cpu = option, classes, portable, cpu
        self.kernel = kernel

    @property
    def cpu_only(self):
        """The implementation that runs on CPU only (a C++ kernel), or None."""
        return self.cpu if self.kernel else None


KINDS = {
    "attention": Kind("attn_impl", {
        "halo": "mindspore_acmix.ops.local_attention:HaloLocalAttention",
        "aot": "mindspore_acmix.cpu.attention:AotLocalAttention",
        "unfold": "mindspore_acmix.ops.references:UnfoldLocalAttention"},
        portable="halo", cpu="aot", kernel="local_attention_cpu.cc"),
    "san": Kind("san_impl", {
        "halo": "mindspore_acmix.ops.san:HaloSanOps",
        "aot": "mindspore_acmix.cpu.san:AotSanOps",
        "unfold": "mindspore_acmix.ops.references:UnfoldSanOps"},
        portable="halo", cpu="aot", kernel="san_cpu.cc"),
    "convolution": Kind("conv_impl", {"native": None, "matmul": None},
                        portable="native", cpu="matmul"),
}
_warned = set()  # reasons already warned about, whatever the kind


def names(kind):
    """The implementation names of `kind`, sorted ("auto" not included)."""
    return sorted(KINDS[kind].classes)


def unavailable_reason(kind, device=None):
    """Why the CPU implementation of `kind` cannot run on `device` (default: the current
    target), or None when it can."""
    k = KINDS[kind]
    device = device or ms.get_context("device_target")
    if k.kernel is None:
        return None if device == "CPU" else f"it is meant for CPU and the device is {device}"
    return kernel_unavailable_reason(k.kernel, device)


def resolve(kind, name="auto", device=None):
    """The implementation `name` stands for on `device` (default: the current target):
    itself, or for "auto" the CPU one where it can run, else the portable one; the first
    fallback on CPU for a given reason warns, once per process."""
    k = KINDS[kind]
    if name != "auto" and name not in k.classes:
        raise ValueError(f"{k.option} must be 'auto' or one of {names(kind)}, got {name!r}")
    if name != "auto":
        return name
    device = device or ms.get_context("device_target")
    if device != "CPU":
        return k.portable
    reason = unavailable_reason(kind, device)
    if reason is None:
        return k.cpu
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"mindspore_acmix: the C++ CPU kernels are unavailable ({reason}); "
                      f"'auto' uses the graph-operator paths instead ({k.option}="
                      f"'{k.portable}' here), slower on CPU.", stacklevel=3)
    return k.portable


def get_class(kind, name):
    """The Cell class of implementation `name` of `kind` (resolved first), built as
    cls(kernel_size, stride, dilation)."""
    module, attr = KINDS[kind].classes[resolve(kind, name)].split(":")
    return getattr(importlib.import_module(module), attr)
