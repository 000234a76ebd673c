"""Benchmark of the ACmix local-attention implementations (a benchmark, not a test).

    python benchmarks/bench_acmix.py [--mode layer|model|infer|san] [--json PATH]

--mode layer (default): fwd+bwd time and peak memory growth of one ACmix layer (every
    available attn_impl, the "unfold" reference among them) against a 3x3 convolution of
    the same width, at the ResNet-50 stage shapes (batch 8: 64@56x56, 128@28x28,
    256@14x14, 512@7x7); with torch installed, also the official-style PyTorch layer
    (tests/torch_reference.py, which the tests check against the official outputs) and a
    torch 3x3 convolution, on the same number of threads.
--mode model: images/s of a training step (SGD with momentum, cross-entropy) of
    acmix_resnet50 against resnet50 at the same batch and image size.
--mode infer: inference latency of acmix_resnet50 and resnet50 exported to MindIR and
    loaded back with nn.GraphCell.
--mode san: fwd+bwd time and peak memory growth of SAN's patchwise SAM (every available
    san_impl, the "unfold" reference among them) against a 3x3 convolution with the same
    input and output widths (C -> C/4), at SAN-10's stage shapes (batch 8: 64@112x112 with
    kernel 3, then 256@56, 512@28, 1024@14, 2048@7 with kernel 7; rel_planes C/16,
    out_planes C/4, share_planes 8, as SAN's Bottleneck builds them).
--mode dense: peak memory and time of a training step of acmix_resnet50 (attn_impl "halo"
    and "aot") against resnet50 at dense-prediction sizes (e.g. --batch 2 --image 512), each
    in a fresh process (compilation included in the peak).
--mode graph: per attention implementation (--impls, default halo,aot,unfold), the
    number of operators in the compiled graphs and the compile times of one ACmix layer
    (64@56x56 stride 1 and 128@56x56 stride 2, forward + backward, batch 1: the count does
    not depend on the batch) and of an acmix_resnet50 training step (batch 8, 112x112,
    SGD with momentum), each compiled in a fresh process. Count: the kernel graphs
    MindSpore saves once compiled (MS_DEV_SAVE_GRAPHS=1, graph_build_*.ir), every CNode but
    the bookkeeping ones (Load, MakeTuple, TupleGetItem, UpdateState, Depend, Return); the
    layer is built with conv_impl="native", what Ascend and GPU compile, and the step with
    the model's defaults. Compile time: first call minus second call. A step that does not
    compile within --compile-cap seconds is recorded as null with the reason.

Timing: for each shape, every variant is timed in one process (a fresh one per shape, see
time_in_subprocess) and the variants take turns within each repetition, so load from
other processes on a shared machine hits all of them alike; the
figure is the median of --repeat repetitions after --warmup untimed ones (the first of
which compiles the graph). Ratios are taken between medians of the same run.

Memory (layer mode): each variant and shape runs in a fresh subprocess, started before the
timing of that shape so that the two never hold memory at once. It first runs the
step once on a small input (batch 1, 8x8), so that framework start-up, kernel loading and
most compiler state are already resident, records VmRSS, resets the kernel's peak-RSS
mark (/proc/self/clear_refs), runs the full-size step twice and reports VmHWM - VmRSS:
the high-water growth of resident memory during the real step, compilation of the
full-size graph included (MindSpore's memory pool keeps what it allocated, so the peak is
reached on the first full-size run).
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(1, os.path.join(ROOT, "tests"))  # torch_reference: the official-style layer
os.environ.setdefault("GLOG_v", "3")

import numpy as np  # noqa: E402

STAGES = ((64, 56), (128, 28), (256, 14), (512, 7))  # ResNet-50 stage widths and sizes at 224


def shape_key(channels, size):
    return f"{channels}@{size}x{size}"


# ---------------------------------------------------------------- variants ----------

def ms_setup():
    import mindspore as ms
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    return ms


LAYER_STRIDE = [1]  # --stride, set in main(): the ACmix layer's and the 3x3 convolutions'


def ms_layer(variant, channels, conv_impl="auto"):
    """(MindSpore Cell) for a variant: "conv" (the 3x3 convolution our models use, SameConv2d:
    per-tap matmuls on CPU), "conv:native" (MindSpore's Conv2D kernel) or "acmix:<attn_impl>"."""
    from mindspore_acmix.layers import ACmix
    from mindspore_acmix.layers.conv import SameConv2d
    if variant.startswith("san"):
        return san_layer(variant, channels, conv_impl)
    if variant.startswith("conv"):
        return SameConv2d(channels, channels, 3, LAYER_STRIDE[0],
                          impl="native" if variant == "conv:native" else "auto")
    return ACmix(channels, channels, stride=LAYER_STRIDE[0], attn_impl=variant.split(":", 1)[1],
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


def make_step(variant, channels, batch, size, threads):
    if variant.startswith("torch:"):
        return torch_step(variant, channels, batch, size, threads)
    from mindspore import Tensor
    ms_setup()
    net = ms_layer(variant, channels)
    x = Tensor(np.random.default_rng(0).standard_normal((batch, channels, size, size))
               .astype(np.float32))
    return ms_step(net, x)


def time_turns(steps, repeat, warmup):
    """{name: [seconds]}: the steps take turns in each repetition (see the module docstring)."""
    times = {name: [] for name in steps}
    for rep in range(warmup + repeat):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            if rep >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------- memory ------------

def _status_mb():
    out = {}
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) / 1024.0
    return out


def memory_probe(variant, channels, batch, size, threads):
    """Run in a fresh process: peak RSS growth (MB) of the full-size step."""
    make_step(variant, channels, 1, 8, threads)()
    step = make_step(variant, channels, batch, size, threads)
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
        f.write("5")  # resets VmHWM to the current RSS
    before = _status_mb()["VmRSS"]
    step()
    step()
    return _status_mb()["VmHWM"] - before


def timing_probe(variants, channels, batch, size, threads, repeat, warmup):
    """Run in a fresh process: {variant: [seconds]}, the variants taking turns."""
    steps = {v: make_step(v, channels, batch, size, threads) for v in variants}
    return time_turns(steps, repeat, warmup)


def time_in_subprocess(variants, channels, size, args):
    """All variants of one shape are timed together in one fresh process: MindSpore's memory
    pool keeps what every compiled graph allocated until the process exits, so one process
    for all shapes would hold the unfold reference's gigabytes from every shape at once."""
    cmd = [sys.executable, os.path.abspath(__file__), "--timing-probe", ",".join(variants),
           "--batch", str(args.batch), "--threads", str(args.threads), "--probe-shape",
           f"{channels},{size}", "--repeat", str(args.repeat), "--warmup", str(args.warmup),
           "--stride", str(LAYER_STRIDE[0])]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
    for line in proc.stdout.splitlines():
        if line.startswith("TIMES_JSON "):
            return json.loads(line.split(" ", 1)[1])
    raise RuntimeError(f"timing {channels}@{size} failed (rc {proc.returncode}):\n"
                       f"{proc.stderr[-3000:]}")


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)


def measure_memory(variant, channels, batch, size, threads):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-probe", variant,
           "--batch", str(batch), "--threads", str(threads), "--probe-shape",
           f"{channels},{size}", "--stride", str(LAYER_STRIDE[0])]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_GROWTH_MB "):
            return float(line.split()[1])
    # reported, not raised: one failed probe (say, the unfold reference killed for memory)
    # should not cost the rest of the table
    print(f"   memory probe {variant} {channels}@{size} failed (rc {proc.returncode}):\n"
          f"{proc.stderr[-2000:]}", flush=True)
    return None


# ---------------------------------------------------------------- modes -------------

def machine_info(threads):
    load = os.getloadavg()
    return {"platform": platform.platform(), "processor": _cpu_model(), "cpus": os.cpu_count(),
            "threads": threads, "loadavg_start": [round(v, 2) for v in load],
            "python": platform.python_version(), "mindspore": _version("mindspore"),
            "torch": _version("torch")}


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


# ---------------------------------------------------------------- MACs --------------

MATMUL = re.compile(r"= (?:PrimFunc_)?(MatMul|BatchMatMul)\(%\w+, %\w+, Bool\((\d)\), Bool\((\d)\)")
SHAPES = re.compile(r"<Tensor\[\w+\], \(([\d, ]*)\)>")


def count_ir_macs(folder):
    """Multiply-accumulates of every MatMul and BatchMatMul in the compiled kernel graphs
    MindSpore saved in `folder` (MS_DEV_SAVE_GRAPHS=1), from their shapes: the output's
    elements times the contracted length."""
    import glob
    macs = 0
    for path in glob.glob(os.path.join(folder, "graph_build_*.ir")):
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        for i, line in enumerate(lines):
            match = MATMUL.search(line)
            if not match:
                continue
            shapes = [tuple(int(v) for v in g.split(",") if v.strip())
                      for g in SHAPES.findall(lines[i + 1])]
            a, out = shapes[0], shapes[-1]
            macs += int(np.prod(out)) * (a[-2] if match.group(2) == "1" else a[-1])
    return macs


def macs_probe(variant, channels, batch, size):
    """Run in a fresh process with MS_DEV_SAVE_GRAPHS set: compile and run the forward of the
    layer (its convolutions native, so that every MatMul is the attention's)."""
    ms = ms_setup()
    from mindspore import Tensor
    net = ms_layer(variant, channels, conv_impl="native")
    x = Tensor(np.random.default_rng(0).standard_normal((batch, channels, size, size))
               .astype(np.float32))
    ms.jit(net)(x).asnumpy()


def window_macs(variant, channels, batch, size):
    """The sliding window's own multiply-accumulates: 2 * k^2 * channels * out_h * out_w per
    image (logits and aggregation; SAN's SAM: over its out_planes = channels / 4)."""
    if variant.startswith("san"):
        kernel, width, stride = int(variant[len("san"):].split(":")[0]), channels // 4, 1
    else:
        kernel, width, stride = 7, channels, LAYER_STRIDE[0]
    out = -(-size // stride)
    return 2 * kernel * kernel * width * out * out * batch


def measure_macs_ratio(variant, channels, size, args):
    """count_ir_macs of the variant's forward over window_macs, in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        cmd = [sys.executable, os.path.abspath(__file__), "--macs-probe", variant,
               "--batch", str(args.batch), "--probe-shape", f"{channels},{size}",
               "--stride", str(LAYER_STRIDE[0])]
        env = dict(os.environ, MS_DEV_SAVE_GRAPHS="1", MS_DEV_SAVE_GRAPHS_PATH=folder)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder, env=env)
        if proc.returncode != 0:
            print(f"   MACs probe {variant} failed (rc {proc.returncode}):\n"
                  f"{proc.stderr[-2000:]}", flush=True)
            return None
        return count_ir_macs(folder) / window_macs(variant, channels, args.batch, size)


def add_halo_report(row, halo, aot, macs_ratio):
    """The halo path against the C++ kernel of the same run: halo_over_aot_time/_mem, and
    halo_over_window_macs (see count_ir_macs, window_macs)."""
    t, m = row["time_s"], row.get("mem_mb") or {}
    if halo in t and aot in t:
        row["halo_over_aot_time"] = t[halo] / t[aot]
    if m.get(halo) is not None and m.get(aot) is not None:
        row["halo_over_aot_mem"] = m[halo] / max(m[aot], 1.0)
    if macs_ratio is not None:
        row["halo_over_window_macs"] = macs_ratio


def measure_variants(variants, channels, size, args):
    """{"mem_mb": {variant: MB} (unless --no-memory), "time_s": median, "times_s": all}."""
    row = {}
    if not args.no_memory:
        # before the timing, while this process is small: MindSpore's memory pool keeps
        # what each timed graph allocated, and the unfold reference alone takes gigabytes
        row["mem_mb"] = {}
        for v in variants:
            print(f"   memory {v}", flush=True)
            row["mem_mb"][v] = measure_memory(v, channels, args.batch, size, args.threads)
    print(f"   timing {', '.join(variants)}", flush=True)
    times = time_in_subprocess(variants, channels, size, args)
    row.update({"time_s": {v: statistics.median(t) for v, t in times.items()},
                "times_s": times})
    return row


def layer_mode(args):
    from mindspore_acmix import implementations
    default = implementations.resolve("attention")
    impls = args.impls.split(",") if args.impls else implementations.names("attention")
    # the default path is always timed (the ratios are about it); "aot" only where it builds
    impls = [default] + [i for i in impls if i != default and (i != "aot" or default == "aot")]
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
            add_halo_report(row, "acmix:halo", "acmix:aot",
                            measure_macs_ratio("acmix:halo", channels, size, args))
        row["stride"] = LAYER_STRIDE[0]
        results[key] = row
        print_layer_row(key, row, variants)
        if args.json:  # after every shape, so a late failure keeps what was measured
            write_json(args.json, {"partial": True, "layer": {"shapes": results}})
    return {"default_attn_impl": default, "batch": args.batch, "shapes": results}


def print_layer_row(key, row, variants):
    print(f"{'variant':<16}{'fwd+bwd ms':>12}{'x conv':>9}{'peak MB':>10}{'x conv':>9}")
    for v in variants:
        t = row["time_s"][v]
        conv = "torch:conv" if v.startswith("torch:") else "conv"
        line = f"{v:<16}{t * 1e3:>12.1f}{t / row['time_s'][conv]:>9.2f}"
        m, mc = row.get("mem_mb", {}).get(v), row.get("mem_mb", {}).get(conv)
        if m is not None and mc is not None:
            line += f"{m:>10.1f}{m / max(mc, 1.0):>9.2f}"
        print(line)
    summary = {k: round(v, 3) for k, v in row.items()
               if k.endswith(("_time", "_mem", "_macs"))}
    print(f"{key}: {summary}", flush=True)


# ---------------------------------------------------------------- SAN ---------------

SAN10_STAGES = ((64, 112, 3), (256, 56, 7), (512, 28, 7), (1024, 14, 7), (2048, 7, 7))


def san_layer(variant, channels, conv_impl="auto"):
    """"san:conv" (a 3x3 SameConv2d, C -> C/4) or "san<k>:<san_impl>" (the patchwise SAM of
    a SAN block of width C with kernel k)."""
    from mindspore_acmix.layers import SAM
    from mindspore_acmix.layers.conv import SameConv2d
    if variant == "san:conv":
        return SameConv2d(channels, channels // 4, 3)
    kernel, impl = variant[len("san"):].split(":")
    return SAM(1, channels, channels // 16, channels // 4, 8, int(kernel), san_impl=impl,
               conv_impl=conv_impl)


def san_mode(args):
    from mindspore_acmix import implementations
    default = implementations.resolve("san")
    impls = args.impls.split(",") if args.impls else implementations.names("san")
    impls = [default] + [i for i in impls if i != default and (i != "aot" or default == "aot")]
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
            add_halo_report(row, halo, f"san{kernel}:aot",
                            measure_macs_ratio(halo, channels, size, args))
        results[key] = row
        print_san_row(key, row, variants)
        if args.json:
            write_json(args.json, {"partial": True, "san": {"shapes": results}})
    return {"default_san_impl": default, "batch": args.batch, "shapes": results}


def print_san_row(key, row, variants):
    print(f"{'variant':<16}{'fwd+bwd ms':>12}{'x conv':>9}{'peak MB':>10}{'x conv':>9}")
    mem = row.get("mem_mb", {})
    for v in variants:
        t = row["time_s"][v]
        line = f"{v:<16}{t * 1e3:>12.1f}{t / row['time_s']['san:conv']:>9.2f}"
        if mem.get(v) is not None and mem.get("san:conv") is not None:
            line += f"{mem[v]:>10.1f}{mem[v] / max(mem['san:conv'], 1.0):>9.2f}"
        print(line)
    summary = {k: round(v, 3) for k, v in row.items()
               if k.endswith(("_time", "_mem", "_macs"))}
    print(f"{key}: {summary}", flush=True)


def train_step_fn(name, batch, image, num_classes, **model_kwargs):
    import mindspore as ms
    from mindspore import Tensor, nn
    from mindspore_acmix import create_model
    net = create_model(name, num_classes=num_classes, **model_kwargs)
    net.set_train(True)
    opt = nn.Momentum(net.trainable_params(), learning_rate=0.01, momentum=0.9)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.CrossEntropyLoss()), opt)
    train.set_train(True)
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((batch, 3, image, image)).astype(np.float32))
    y = Tensor(rng.integers(0, num_classes, batch).astype(np.int32))

    def step():
        train(x, y).asnumpy()
    return step


def model_mode(args):
    ms_setup()
    from mindspore_acmix.implementations import resolve
    names = ("acmix_resnet50", "resnet50")
    print(f"\n== training step, batch {args.batch}, {args.image}x{args.image}", flush=True)
    steps = {n: train_step_fn(n, args.batch, args.image, args.num_classes) for n in names}
    times = time_turns(steps, args.model_repeat, args.warmup)
    out = {"batch": args.batch, "image": args.image, "attn_impl": resolve("attention"),
           "step_s": {n: statistics.median(t) for n, t in times.items()}, "steps_s": times}
    out["images_per_s"] = {n: args.batch / t for n, t in out["step_s"].items()}
    out["acmix_resnet50_over_resnet50_throughput"] = (out["images_per_s"]["acmix_resnet50"]
                                                      / out["images_per_s"]["resnet50"])
    for n in names:
        print(f"{n:<16} step {out['step_s'][n]:.3f} s  {out['images_per_s'][n]:.2f} images/s")
    print(f"acmix_resnet50 / resnet50 throughput: "
          f"{out['acmix_resnet50_over_resnet50_throughput']:.3f}", flush=True)
    return out


def infer_mode(args):
    ms = ms_setup()
    from mindspore import Tensor, nn
    from mindspore_acmix import create_model
    from mindspore_acmix.implementations import resolve
    names = ("acmix_resnet50", "resnet50")
    x = Tensor(np.random.default_rng(0).standard_normal(
        (args.infer_batch, 3, args.image, args.image)).astype(np.float32))
    steps, max_diff = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            net = create_model(n, num_classes=args.num_classes)
            net.set_train(False)
            path = os.path.join(tmp, n)
            ms.export(net, x, file_name=path, file_format="MINDIR")
            graph = nn.GraphCell(ms.load(path + ".mindir"))
            max_diff[n] = float(np.abs(graph(x).asnumpy() - net(x).asnumpy()).max())

            def step(graph=graph):
                graph(x).asnumpy()
            steps[n] = step
        print(f"\n== MindIR inference, batch {args.infer_batch}, {args.image}x{args.image}",
              flush=True)
        times = time_turns(steps, args.model_repeat, args.warmup)
    out = {"batch": args.infer_batch, "image": args.image,
           "attn_impl": resolve("attention"),
           "latency_s": {n: statistics.median(t) for n, t in times.items()}, "latencies_s": times,
           "mindir_vs_net_max_abs_diff": max_diff}
    out["acmix_resnet50_over_resnet50_latency"] = (out["latency_s"]["acmix_resnet50"]
                                                   / out["latency_s"]["resnet50"])
    for n in names:
        print(f"{n:<16} {out['latency_s'][n] * 1e3:.1f} ms  (MindIR vs net max |diff| "
              f"{max_diff[n]:.2e})")
    print(f"acmix_resnet50 / resnet50 latency: {out['acmix_resnet50_over_resnet50_latency']:.3f}",
          flush=True)
    return out


# ---------------------------------------------------------------- dense -------------

DENSE_VARIANTS = {"acmix_resnet50:halo": ("acmix_resnet50", {"attn_impl": "halo"}),
                  "acmix_resnet50:aot": ("acmix_resnet50", {"attn_impl": "aot"}),
                  "resnet50": ("resnet50", {})}


def dense_probe(variant, batch, image, repeat, num_classes):
    """Run in a fresh process: peak RSS growth (MB) from the built network through its first
    training steps (compilation included), and the median time of `repeat` later steps."""
    ms_setup()
    name, kwargs = DENSE_VARIANTS[variant]
    step = train_step_fn(name, batch, image, num_classes, **kwargs)
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
        f.write("5")
    before = _status_mb()["VmRSS"]
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    times = time_turns({variant: step}, repeat, 0)[variant]
    return {"peak_mb": _status_mb()["VmHWM"] - before, "first_step_s": first,
            "step_s": statistics.median(times)}


def dense_mode(args):
    """Dense-prediction sizes: a training step (SGD with momentum, cross-entropy) of
    acmix_resnet50 (attn_impl "halo" and "aot") and resnet50 at --batch x --image, each in a
    fresh process: peak memory and step time, and their ratios."""
    out = {"batch": args.batch, "image": args.image, "variants": {}}
    for variant in (args.impls.split(",") if args.impls else DENSE_VARIANTS):
        print(f"   {variant}", flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), "--dense-probe", variant, "--batch",
               str(args.batch), "--image", str(args.image), "--model-repeat",
               str(args.model_repeat), "--num-classes", str(args.num_classes)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  timeout=args.compile_cap)
        except subprocess.TimeoutExpired:
            out["variants"][variant] = {"error": f"not done within {args.compile_cap} s"}
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("DENSE_JSON ")]
        out["variants"][variant] = json.loads(lines[0].split(" ", 1)[1]) if lines else \
            {"error": f"failed (rc {proc.returncode}): {proc.stderr.strip()[-300:]}"}
        print(f"   {variant}: {out['variants'][variant]}", flush=True)
    got = {v: r for v, r in out["variants"].items() if "error" not in r}
    for a, b in (("acmix_resnet50:halo", "resnet50"), ("acmix_resnet50:aot", "resnet50"),
                 ("acmix_resnet50:halo", "acmix_resnet50:aot")):
        if a in got and b in got:
            key = f"{a.replace('acmix_resnet50:', '')}_over_{b.replace('acmix_resnet50:', '')}"
            out[f"{key}_mem"] = got[a]["peak_mb"] / got[b]["peak_mb"]
            out[f"{key}_time"] = got[a]["step_s"] / got[b]["step_s"]
    print(json.dumps({k: round(v, 3) for k, v in out.items() if k.endswith(("_mem", "_time"))}),
          flush=True)
    return out


BOOKKEEPING_OPS = {"Load", "MakeTuple", "TupleGetItem", "UpdateState", "Depend", "Return"}
GRAPH_TARGETS = {"layer_s1": (64, 56, 1), "layer_s2": (128, 56, 2)}


def count_ir_ops(folder):
    """{op name: count} over the compiled kernel graphs MindSpore saved in `folder`."""
    import collections
    import glob
    import re
    node = re.compile(r"^\s+%\d+\([^)]*\) = (?:PrimFunc_)?([A-Za-z0-9_]+)")
    counts = collections.Counter()
    for path in glob.glob(os.path.join(folder, "graph_build_*.ir")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                match = node.match(line)
                if match and match.group(1) not in BOOKKEEPING_OPS:
                    counts[match.group(1)] += 1
    return dict(counts)


def graph_probe(impl, target, batch, image):
    """Run in a fresh process with MS_DEV_SAVE_GRAPHS set: compile one target twice-run,
    return the compile time (first call minus second)."""
    ms = ms_setup()
    from mindspore import Tensor
    from mindspore_acmix.layers import ACmix
    rng = np.random.default_rng(0)
    if target == "resnet50":
        from mindspore_acmix import create_model  # noqa: F401 (train_step_fn builds it)
        step = train_step_fn("acmix_resnet50", batch, image, 1000, attn_impl=impl)
    else:
        channels, size, stride = GRAPH_TARGETS[target.replace("_fwd", "")]
        net = ACmix(channels, channels, stride=stride, attn_impl=impl, conv_impl="native")
        x = Tensor(rng.standard_normal((1, channels, size, size)).astype(np.float32))
        if target.endswith("_fwd"):
            fwd = ms.jit(net)

            def step():
                fwd(x).asnumpy()
        else:
            step = ms_step(net, x)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    step()
    return first - (time.perf_counter() - t0)


def run_graph_probe(impl, target, args):
    """(op counts, compile seconds) of one target in a fresh process, or (None, reason)."""
    with tempfile.TemporaryDirectory() as folder:
        cmd = [sys.executable, os.path.abspath(__file__), "--graph-probe", f"{impl},{target}",
               "--batch", str(args.graph_batch), "--image", str(args.graph_image)]
        env = dict(os.environ, MS_DEV_SAVE_GRAPHS="1", MS_DEV_SAVE_GRAPHS_PATH=folder)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder, env=env,
                                  timeout=args.compile_cap)
        except subprocess.TimeoutExpired:
            return None, f"did not compile and run within {args.compile_cap} s"
        for line in proc.stdout.splitlines():
            if line.startswith("COMPILE_S "):
                return count_ir_ops(folder), float(line.split()[1])
        return None, f"failed (rc {proc.returncode}): {proc.stderr.strip()[-300:]}"


def graph_mode(args):
    impls = args.impls.split(",") if args.impls else ["halo", "aot", "unfold"]
    targets = ["layer_s1_fwd", "layer_s1", "layer_s2_fwd", "layer_s2"]
    if not args.no_model:
        targets.append("resnet50")
    out = {}
    for impl in impls:
        row = out.setdefault(impl, {})
        for target in targets:
            print(f"   {impl} {target}", flush=True)
            counts, compile_s = run_graph_probe(impl, target, args)
            key = "resnet50_step" if target == "resnet50" else target
            row[f"{key}_ops"] = None if counts is None else sum(counts.values())
            if counts is None:
                row[f"{key}_error"] = compile_s
            elif target != "resnet50":
                row[f"{key}_op_types"] = counts
            if not target.endswith("_fwd"):
                row[f"{target}_compile_s"] = None if counts is None else compile_s
        print(f"{impl}: " + json.dumps({k: v for k, v in row.items()
                                        if not k.endswith("_op_types")}), flush=True)
        if args.json:  # after every implementation, so a late failure keeps the rest
            write_json(args.json, out)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("layer", "model", "infer", "graph", "san", "dense"),
                   default="layer")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=7, help="timed repetitions (layer mode)")
    p.add_argument("--model-repeat", type=int, default=5,
                   help="timed repetitions (model and infer modes)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for torch and the AOT kernel (MindSpore uses all cores)")
    p.add_argument("--shapes", help="layer and san modes: comma-separated C@S, e.g. 64@56,128@28")
    p.add_argument("--impls", help="layer mode: comma-separated attn_impl names to time besides "
                   "the default (all by default; the timed variants share one process, so on a "
                   "small machine time 'unfold' in a separate run)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--no-native-conv", action="store_true",
                   help="layer mode: skip MindSpore's Conv2D (minutes per step at 256x256 on CPU)")
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--infer-batch", type=int, default=1)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--graph-batch", type=int, default=8, help="graph mode: the step's batch")
    p.add_argument("--graph-image", type=int, default=112, help="graph mode: the step's image")
    p.add_argument("--compile-cap", type=int, default=1200,
                   help="graph mode: seconds a probe may take before it counts as failed")
    p.add_argument("--no-model", action="store_true", help="graph mode: layers only")
    p.add_argument("--memory-probe", help=argparse.SUPPRESS)
    p.add_argument("--graph-probe", help=argparse.SUPPRESS)
    p.add_argument("--timing-probe", help=argparse.SUPPRESS)
    p.add_argument("--macs-probe", help=argparse.SUPPRESS)
    p.add_argument("--dense-probe", help=argparse.SUPPRESS)
    p.add_argument("--stride", type=int, default=1,
                   help="layer mode: the stride of the ACmix layer and the 3x3 convolutions")
    p.add_argument("--probe-shape", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    LAYER_STRIDE[0] = args.stride

    if args.timing_probe:
        channels, size = (int(v) for v in args.probe_shape.split(","))
        times = timing_probe(args.timing_probe.split(","), channels, args.batch, size,
                             args.threads, args.repeat, args.warmup)
        print("TIMES_JSON " + json.dumps(times))
        return None
    if args.graph_probe:
        impl, target = args.graph_probe.split(",")
        print(f"COMPILE_S {graph_probe(impl, target, args.batch, args.image):.3f}")
        return None
    if args.dense_probe:
        print("DENSE_JSON " + json.dumps(dense_probe(args.dense_probe, args.batch, args.image,
                                                     args.model_repeat, args.num_classes)))
        return None
    if args.macs_probe:
        channels, size = (int(v) for v in args.probe_shape.split(","))
        macs_probe(args.macs_probe, channels, args.batch, size)
        return None
    if args.memory_probe:
        channels, size = (int(v) for v in args.probe_shape.split(","))
        growth = memory_probe(args.memory_probe, channels, args.batch, size, args.threads)
        print(f"PEAK_GROWTH_MB {growth:.3f}")
        return None

    info = machine_info(args.threads)
    print(json.dumps(info), flush=True)
    result = {"machine": info, "mode": args.mode,
              "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])}
    result[args.mode] = {"layer": layer_mode, "model": model_mode, "infer": infer_mode,
                         "graph": graph_mode, "san": san_mode,
                         "dense": dense_mode}[args.mode](args)
    result["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        # graph mode: {impl: {...}} exactly, the machine in each implementation's entry
        write_json(args.json, {impl: dict(row, machine=result["machine"]) for impl, row in
                               result["graph"].items()} if args.mode == "graph" else result)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
