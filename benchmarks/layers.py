"""Layer benchmarks: one ACmix layer (`--mode layer`) and SAN's patchwise SAM (`--mode san`),
fwd+bwd time and peak memory against a 3x3 convolution, and the halo path's report.

--mode layer (default): every available attn_impl (the "unfold" reference among them)
    against a 3x3 convolution of the same width, at the ResNet-50 stage shapes (batch 8:
    64@56x56, 128@28x28, 256@14x14, 512@7x7); with torch installed, also the official-style
    PyTorch layer (tests/torch_reference.py, which the tests check against the official
    outputs) and a torch 3x3 convolution, on the same number of threads.
--mode san: every available san_impl (the "unfold" reference among them) against a 3x3
    convolution with the same input and output widths (C -> C/4), at SAN-10's stage shapes
    (batch 8: 64@112x112 with kernel 3, then 256@56, 512@28, 1024@14, 2048@7 with kernel 7;
    rel_planes C/16, out_planes C/4, share_planes 8, as SAN's Bottleneck builds them).

Where "halo" is measured, the row also holds halo_over_aot_time, halo_over_aot_mem and
halo_over_window_macs (benchmarks/graphs.py: the compiled forward's matmul work over the
sliding window's own).

Per shape, each variant's memory is measured in a fresh process (benchmarks/probe.py
memory), before the timing so that the two never hold memory at once: the probe first runs
the step on a small input (batch 1, 8x8), so that framework start-up, kernel loading and most
compiler state are already resident, resets the peak mark, runs the full-size step twice
and reports the growth, compilation of the full-size graph included (MindSpore's memory pool
keeps what it allocated, so the peak is reached on the first full-size run). Then every
variant of the shape is timed in one more fresh process (benchmarks/probe.py timing), taking
turns (benchmarks/common.py).
"""
import os
import statistics
import sys

import numpy as np

from benchmarks.common import (ROOT, ProbeFailed, have_torch, ms_setup, peak_growth, reset_peak,
                               run_probe, shape_key, time_turns, write_json)
from benchmarks.graphs import macs_over_window

STAGES = ((64, 56), (128, 28), (256, 14), (512, 7))  # ResNet-50 stage widths and sizes at 224
SAN10_STAGES = ((64, 112, 3), (256, 56, 7), (512, 28, 7), (1024, 14, 7), (2048, 7, 7))
ACMIX_KERNEL = 7


# ---------------------------------------------------------------- variants ----------

def ms_layer(variant, channels, stride=1, conv_impl="auto"):
    """(MindSpore Cell) for a variant: "conv" (the 3x3 convolution our models use, SameConv2d:
    per-tap matmuls on CPU), "conv:native" (MindSpore's Conv2D kernel), "acmix:<attn_impl>",
    "san:conv" (a 3x3 SameConv2d, C -> C/4) or "san<k>:<san_impl>" (the patchwise SAM of a
    SAN block of width C with kernel k; stride 1)."""
    from mindspore_acmix.layers import SAM, ACmix
    from mindspore_acmix.layers.conv import SameConv2d
    if variant == "san:conv":
        return SameConv2d(channels, channels // 4, 3)
    if variant.startswith("san"):
        kernel, impl = variant[len("san"):].split(":")
        return SAM(1, channels, channels // 16, channels // 4, 8, int(kernel), san_impl=impl,
                   conv_impl=conv_impl)
    if variant.startswith("conv"):
        return SameConv2d(channels, channels, 3, stride,
                          impl="native" if variant == "conv:native" else "auto")
    return ACmix(channels, channels, stride=stride, attn_impl=variant.split(":", 1)[1],
                 conv_impl=conv_impl)


def ms_step(net, x):
    """A function running one fwd+bwd of sum(net(x)) w.r.t. the input and every parameter."""
    ms = ms_setup()
    params = net.trainable_params()

    def loss_fn(inp):
        return net(inp).sum()

    grad_fn = ms.jit(ms.value_and_grad(loss_fn, 0, params))

    def step():
        loss, grads = grad_fn(x)
        loss.asnumpy()  # graph execution on CPU is synchronous: every gradient is ready
        return grads
    return step


def torch_step(variant, channels, batch, size, threads):
    import torch
    sys.path.insert(1, os.path.join(ROOT, "tests"))  # torch_reference: the official-style layer
    import torch_reference
    torch.set_num_threads(threads)
    if variant == "torch:conv":
        net = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    else:
        net = torch_reference.ACmix(channels, channels)
    x = torch.randn(batch, channels, size, size, requires_grad=True)

    def step():
        net.zero_grad(set_to_none=True)
        x.grad = None
        net(x).sum().backward()
    return step


def random_input(shape):
    from mindspore import Tensor
    return Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))


def make_step(variant, channels, batch, size, threads, stride=1):
    if variant.startswith("torch:"):
        return torch_step(variant, channels, batch, size, threads)
    ms_setup()
    return ms_step(ms_layer(variant, channels, stride), random_input((batch, channels, size, size)))


# ---------------------------------------------------------------- probe bodies ------
# run by benchmarks/probe.py, each in a fresh process

def memory_probe(variant, channels, batch, size, threads, stride):
    """{"peak_growth_mb"}: peak resident growth of the full-size step (see the docstring)."""
    make_step(variant, channels, 1, 8, threads, stride)()
    step = make_step(variant, channels, batch, size, threads, stride)
    before = reset_peak()
    step()
    step()
    return {"peak_growth_mb": peak_growth(before)}


def timing_probe(variants, channels, batch, size, threads, stride, repeat, warmup):
    """{variant: [seconds]}, the variants taking turns."""
    steps = {v: make_step(v, channels, batch, size, threads, stride) for v in variants}
    return time_turns(steps, repeat, warmup)


def macs_probe(variant, channels, batch, size, stride):
    """Compile and run the layer's forward, its convolutions native so that every MatMul in
    the saved graphs is the attention's (benchmarks/graphs.py counts them)."""
    ms = ms_setup()
    net = ms_layer(variant, channels, stride, conv_impl="native")
    ms.jit(net)(random_input((batch, channels, size, size))).asnumpy()
    return {}


GRAPH_LAYERS = {"layer_s1": (64, 56, 1), "layer_s2": (128, 56, 2)}


def graph_step(impl, target):
    """The step benchmarks/graphs.py counts for a layer target ("layer_s1[_fwd]",
    "layer_s2[_fwd]"): one ACmix layer, batch 1, convolutions native; forward only or
    fwd+bwd."""
    ms = ms_setup()
    from mindspore_acmix.layers import ACmix
    channels, size, stride = GRAPH_LAYERS[target.replace("_fwd", "")]
    net = ACmix(channels, channels, stride=stride, attn_impl=impl, conv_impl="native")
    x = random_input((1, channels, size, size))
    if not target.endswith("_fwd"):
        return ms_step(net, x)
    fwd = ms.jit(net)

    def step():
        fwd(x).asnumpy()
    return step


# ---------------------------------------------------------------- measurement -------

def measure_variants(variants, channels, size, args):
    """{"mem_mb": {variant: MB} (unless --no-memory), "time_s": median, "times_s": all}."""
    common = ["--shape", f"{channels}@{size}", "--batch", args.batch, "--threads", args.threads,
              "--stride", args.stride]
    row = {}
    if not args.no_memory:
        # before the timing, while this process is small: MindSpore's memory pool keeps
        # what each timed graph allocated, and the unfold reference alone takes gigabytes
        row["mem_mb"] = {}
        for v in variants:
            print(f"   memory {v}", flush=True)
            try:
                row["mem_mb"][v] = run_probe(["memory", "--variant", v] + common,
                                             threads=args.threads)["peak_growth_mb"]
            except ProbeFailed as exc:
                # reported, not raised: one failed probe (say, the unfold reference killed
                # for memory) should not cost the rest of the table
                print(f"   memory probe {v} {channels}@{size} {exc}", flush=True)
                row["mem_mb"][v] = None
    print(f"   timing {', '.join(variants)}", flush=True)
    try:
        times = run_probe(["timing", "--variants", ",".join(variants), "--repeat", args.repeat,
                           "--warmup", args.warmup] + common, threads=args.threads)
    except ProbeFailed as exc:
        raise RuntimeError(f"timing {channels}@{size} {exc}") from exc
    row.update({"time_s": {v: statistics.median(t) for v, t in times.items()},
                "times_s": times})
    return row


def add_halo_report(row, halo, aot, macs_ratio):
    """The halo path against the C++ kernel of the same run: halo_over_aot_time/_mem, and
    halo_over_window_macs (benchmarks/graphs.py)."""
    t, m = row["time_s"], row.get("mem_mb") or {}
    if halo in t and aot in t:
        row["halo_over_aot_time"] = t[halo] / t[aot]
    if m.get(halo) is not None and m.get(aot) is not None:
        row["halo_over_aot_mem"] = m[halo] / max(m[aot], 1.0)
    if macs_ratio is not None:
        row["halo_over_window_macs"] = macs_ratio


def implementations_to_time(kind, impls_arg):
    """(default, [default, others...]) for "attention" or "san": the default path is always
    timed (the ratios are about it); "aot" only where it builds."""
    from mindspore_acmix import implementations
    default = implementations.resolve(kind)
    impls = impls_arg.split(",") if impls_arg else implementations.names(kind)
    return default, [default] + [i for i in impls
                                 if i != default and (i != "aot" or default == "aot")]


def layer_mode(args):
    default, impls = implementations_to_time("attention", args.impls)
    variants = ["conv"] + ([] if args.no_native_conv else ["conv:native"]) + \
        [f"acmix:{i}" for i in impls]
    if have_torch() and not args.no_torch:
        variants += ["torch:conv", "torch:acmix"]
    shapes = [tuple(int(v) for v in s.split("@")) for s in args.shapes.split(",")] \
        if args.shapes else STAGES
    results = {}
    for channels, size in shapes:
        key = shape_key(channels, size)
        print(f"\n== {key}, batch {args.batch}", flush=True)
        row = measure_variants(variants, channels, size, args)
        acmix = f"acmix:{default}"
        t, m = row["time_s"], row.get("mem_mb")
        row["acmix_impl"] = default
        row["acmix_over_conv_time"] = t[acmix] / t["conv"]
        if "conv:native" in t:
            row["acmix_over_native_conv_time"] = t[acmix] / t["conv:native"]
        if "acmix:unfold" in t:
            row["unfold_over_acmix_time"] = t["acmix:unfold"] / t[acmix]
        if "torch:acmix" in t:
            row["torch_acmix_over_acmix_time"] = t["torch:acmix"] / t[acmix]
            row["acmix_over_torch_conv_time"] = t[acmix] / t["torch:conv"]
        for impl in (i for i in impls if i != default):  # e.g. halo_over_unfold_time
            other = f"acmix:{impl}"
            for base, ref in (("unfold", "acmix:unfold"), ("conv", "conv")):
                if base != impl and ref in t:
                    row[f"{impl}_over_{base}_time"] = t[other] / t[ref]
                    if m and m.get(other) is not None and m.get(ref) is not None:
                        row[f"{impl}_over_{base}_mem"] = m[other] / max(m[ref], 1.0)
            if m and m.get(other) is not None and m.get(acmix) is not None:
                row[f"{impl}_over_{default}_mem"] = m[other] / max(m[acmix], 1.0)
        if m and m.get(acmix) is not None:
            if m.get("conv") is not None:
                row["acmix_over_conv_mem"] = m[acmix] / max(m["conv"], 1.0)
            if m.get("acmix:unfold") is not None:
                row["acmix_over_unfold_mem"] = m[acmix] / m["acmix:unfold"]
        if "acmix:halo" in variants:
            add_halo_report(row, "acmix:halo", "acmix:aot", macs_over_window(
                "acmix:halo", channels, size, args.batch, args.stride, ACMIX_KERNEL, channels))
        row["stride"] = args.stride
        results[key] = row
        print_row(key, row, variants, lambda v: "torch:conv" if v.startswith("torch:") else "conv")
        if args.json:  # after every shape, so a late failure keeps what was measured
            write_json(args.json, {"partial": True, "layer": {"shapes": results}})
    return {"default_attn_impl": default, "batch": args.batch, "shapes": results}


def san_mode(args):
    default, impls = implementations_to_time("san", args.impls)
    stages = SAN10_STAGES
    if args.shapes:
        wanted = set(args.shapes.split(","))
        stages = tuple(s for s in stages if f"{s[0]}@{s[1]}" in wanted)
    results = {}
    for channels, size, kernel in stages:
        key = shape_key(channels, size)
        variants = ["san:conv"] + [f"san{kernel}:{i}" for i in impls]
        print(f"\n== SAM patchwise {key}, kernel {kernel}, batch {args.batch}", flush=True)
        row = {"kernel": kernel, **measure_variants(variants, channels, size, args),
               "san_impl": default}
        t, m = row["time_s"], row.get("mem_mb", {})
        sam, unfold = f"san{kernel}:{default}", f"san{kernel}:unfold"
        row["sam_over_conv_time"] = t[sam] / t["san:conv"]
        if unfold in t:
            row["unfold_over_sam_time"] = t[unfold] / t[sam]
        if m.get(sam) is not None and m.get(unfold) is not None:
            row["unfold_over_sam_mem"] = m[unfold] / max(m[sam], 1.0)
        if m.get(sam) is not None and m.get("san:conv") is not None:
            row["sam_over_conv_mem"] = m[sam] / max(m["san:conv"], 1.0)
        halo = f"san{kernel}:halo"
        if halo in variants:
            # SAN's SAM works at stride 1 over out_planes = channels / 4
            add_halo_report(row, halo, f"san{kernel}:aot", macs_over_window(
                halo, channels, size, args.batch, 1, kernel, channels // 4))
        results[key] = row
        print_row(key, row, variants, lambda v: "san:conv")
        if args.json:
            write_json(args.json, {"partial": True, "san": {"shapes": results}})
    return {"default_san_impl": default, "batch": args.batch, "shapes": results}


def print_row(key, row, variants, conv_of):
    """The shape's table (time and peak memory, each also over its convolution `conv_of(v)`)
    and its ratios."""
    print(f"{'variant':<16}{'fwd+bwd ms':>12}{'x conv':>9}{'peak MB':>10}{'x conv':>9}")
    mem = row.get("mem_mb") or {}
    for v in variants:
        t, conv = row["time_s"][v], conv_of(v)
        line = f"{v:<16}{t * 1e3:>12.1f}{t / row['time_s'][conv]:>9.2f}"
        if mem.get(v) is not None and mem.get(conv) is not None:
            line += f"{mem[v]:>10.1f}{mem[v] / max(mem[conv], 1.0):>9.2f}"
        print(line)
    summary = {k: round(v, 3) for k, v in row.items()
               if k.endswith(("_time", "_mem", "_macs"))}
    print(f"{key}: {summary}", flush=True)
