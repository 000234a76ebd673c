"""Compiled-graph counts: operators and multiply-accumulates in the kernel graphs MindSpore
saves once compiled (MS_DEV_SAVE_GRAPHS=1, graph_build_*.ir), and `--mode graph`.

--mode graph: per attention implementation (--impls, default halo,aot,unfold), the number of
operators in the compiled graphs and the compile times of one ACmix layer (64@56x56 stride 1
and 128@56x56 stride 2, forward + backward, batch 1: the count does not depend on the batch)
and of an acmix_resnet50 training step (batch 8, 112x112, SGD with momentum), each compiled
in a fresh process. Count: every CNode of the saved graphs but the bookkeeping ones (Load,
MakeTuple, TupleGetItem, UpdateState, Depend, Return); the layer is built with
conv_impl="native", what Ascend and GPU compile, and the step with the model's defaults.
Compile time: first call minus second call. A step that does not compile within
--compile-cap seconds is recorded as null with the reason.
"""
import collections
import glob
import json
import os
import re
import tempfile

import numpy as np

from benchmarks.common import ProbeFailed, run_probe, write_json

BOOKKEEPING_OPS = {"Load", "MakeTuple", "TupleGetItem", "UpdateState", "Depend", "Return"}
NODE = re.compile(r"^\s+%\d+\([^)]*\) = (?:PrimFunc_)?([A-Za-z0-9_]+)")
MATMUL = re.compile(r"= (?:PrimFunc_)?(MatMul|BatchMatMul)\(%\w+, %\w+, Bool\((\d)\), Bool\((\d)\)")
SHAPES = re.compile(r"<Tensor\[\w+\], \(([\d, ]*)\)>")


def _graph_files(folder):
    return glob.glob(os.path.join(folder, "graph_build_*.ir"))


def count_ir_ops(folder):
    """{op name: count} over the compiled kernel graphs MindSpore saved in `folder`."""
    counts = collections.Counter()
    for path in _graph_files(folder):
        with open(path, encoding="utf-8") as f:
            for line in f:
                match = NODE.match(line)
                if match and match.group(1) not in BOOKKEEPING_OPS:
                    counts[match.group(1)] += 1
    return dict(counts)


def count_ir_macs(folder):
    """Multiply-accumulates of every MatMul and BatchMatMul in the compiled kernel graphs
    MindSpore saved in `folder`, from their shapes: the output's elements times the
    contracted length."""
    macs = 0
    for path in _graph_files(folder):
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


def probe_saving_graphs(argv, count, timeout=None):
    """(the probe's result, count(folder)): run a probe (benchmarks/probe.py) in a fresh
    process that saves its compiled graphs to a temporary folder, then count them."""
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, MS_DEV_SAVE_GRAPHS="1", MS_DEV_SAVE_GRAPHS_PATH=folder)
        result = run_probe(argv, cwd=folder, env=env, timeout=timeout)
        return result, count(folder)


def window_macs(kernel, width, size, stride, batch):
    """The sliding window's own multiply-accumulates: 2 * k^2 * width * out_h * out_w per
    image (logits and aggregation)."""
    out = -(-size // stride)
    return 2 * kernel * kernel * width * out * out * batch


def macs_over_window(variant, channels, size, batch, stride, kernel, width):
    """count_ir_macs of the variant's compiled forward (benchmarks/probe.py macs) over
    window_macs; None, with the reason printed, when the probe fails."""
    argv = ["macs", "--variant", variant, "--shape", f"{channels}@{size}", "--batch", batch,
            "--stride", stride]
    try:
        _, macs = probe_saving_graphs(argv, count_ir_macs)
    except ProbeFailed as exc:
        print(f"   MACs probe {variant} {exc}", flush=True)
        return None
    return macs / window_macs(kernel, width, size, stride, batch)


# ---------------------------------------------------------------- --mode graph ------

LAYER_TARGETS = ["layer_s1_fwd", "layer_s1", "layer_s2_fwd", "layer_s2"]


def graph_mode(args):
    impls = args.impls.split(",") if args.impls else ["halo", "aot", "unfold"]
    targets = LAYER_TARGETS + ([] if args.no_model else ["resnet50"])
    out = {}
    for impl in impls:
        row = out.setdefault(impl, {})
        for target in targets:
            print(f"   {impl} {target}", flush=True)
            argv = ["graph", "--impl", impl, "--target", target, "--batch", args.graph_batch,
                    "--image", args.graph_image]
            try:
                result, counts = probe_saving_graphs(argv, count_ir_ops, args.compile_cap)
            except ProbeFailed as exc:
                result, counts = {"error": str(exc)}, None
            key = "resnet50_step" if target == "resnet50" else target
            row[f"{key}_ops"] = None if counts is None else sum(counts.values())
            if counts is None:
                row[f"{key}_error"] = result["error"]
            elif target != "resnet50":
                row[f"{key}_op_types"] = counts
            if not target.endswith("_fwd"):
                row[f"{target}_compile_s"] = None if counts is None else result["compile_s"]
        print(f"{impl}: " + json.dumps({k: v for k, v in row.items()
                                        if not k.endswith("_op_types")}), flush=True)
        if args.json:  # after every implementation, so a late failure keeps the rest
            write_json(args.json, out)
    return out
