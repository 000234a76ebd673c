"""Whole-model benchmarks: acmix_resnet50 against resnet50.

--mode model: images/s of a training step (SGD with momentum, cross-entropy) at the same
    batch and image size, the two models taking turns (benchmarks/common.py).
--mode infer: inference latency of the two exported to MindIR and loaded back with
    nn.GraphCell.
--mode dense: peak memory and time of a training step of acmix_resnet50 (attn_impl "halo"
    and "aot") against resnet50 at dense-prediction sizes (e.g. --batch 2 --image 512), each
    in a fresh process (benchmarks/probe.py dense): peak resident growth from the built
    network through its first steps (compilation included), the first step's time
    (compilation included) and the median wall and CPU time of --model-repeat later steps.
"""
import json
import os
import statistics
import tempfile
import time

import numpy as np

from benchmarks.common import (ProbeFailed, ms_setup, peak_growth, reset_peak, run_probe,
                               time_turns)

NAMES = ("acmix_resnet50", "resnet50")


def train_step_fn(name, batch, image, num_classes, **model_kwargs):
    """A function running one training step (SGD with momentum, cross-entropy) of a model of
    the zoo on a fixed random batch."""
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
    print(f"\n== training step, batch {args.batch}, {args.image}x{args.image}", flush=True)
    steps = {n: train_step_fn(n, args.batch, args.image, args.num_classes) for n in NAMES}
    times = time_turns(steps, args.model_repeat, args.warmup)
    out = {"batch": args.batch, "image": args.image, "attn_impl": resolve("attention"),
           "step_s": {n: statistics.median(t) for n, t in times.items()}, "steps_s": times}
    out["images_per_s"] = {n: args.batch / t for n, t in out["step_s"].items()}
    out["acmix_resnet50_over_resnet50_throughput"] = (out["images_per_s"]["acmix_resnet50"]
                                                      / out["images_per_s"]["resnet50"])
    for n in NAMES:
        print(f"{n:<16} step {out['step_s'][n]:.3f} s  {out['images_per_s'][n]:.2f} images/s")
    print(f"acmix_resnet50 / resnet50 throughput: "
          f"{out['acmix_resnet50_over_resnet50_throughput']:.3f}", flush=True)
    return out


def infer_mode(args):
    ms = ms_setup()
    from mindspore import Tensor, nn
    from mindspore_acmix import create_model
    from mindspore_acmix.implementations import resolve
    x = Tensor(np.random.default_rng(0).standard_normal(
        (args.infer_batch, 3, args.image, args.image)).astype(np.float32))
    steps, max_diff = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in NAMES:
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
    for n in NAMES:
        print(f"{n:<16} {out['latency_s'][n] * 1e3:.1f} ms  (MindIR vs net max |diff| "
              f"{max_diff[n]:.2e})")
    print(f"acmix_resnet50 / resnet50 latency: {out['acmix_resnet50_over_resnet50_latency']:.3f}",
          flush=True)
    return out


# ---------------------------------------------------------------- dense -------------

DENSE_VARIANTS = {"acmix_resnet50:halo": ("acmix_resnet50", {"attn_impl": "halo"}),
                  "acmix_resnet50:aot": ("acmix_resnet50", {"attn_impl": "aot"}),
                  "resnet50": ("resnet50", {})}
DENSE_RATIOS = (("acmix_resnet50:halo", "resnet50"), ("acmix_resnet50:aot", "resnet50"),
                ("acmix_resnet50:halo", "acmix_resnet50:aot"))


def dense_probe(variant, batch, image, repeat, num_classes):
    """Run by benchmarks/probe.py in a fresh process: {"peak_mb", "first_step_s", "step_s",
    "step_cpu_s", "loadavg"} (see the module docstring). The variants run one after another,
    not in turns, so the load can differ between them: hence the load average at the start
    and the end, and the step's CPU time (every thread of the process), which waiting for a
    core does not inflate."""
    load = [round(os.getloadavg()[0], 2)]
    ms_setup()
    name, kwargs = DENSE_VARIANTS[variant]
    step = train_step_fn(name, batch, image, num_classes, **kwargs)
    before = reset_peak()
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"peak_mb": peak_growth(before), "first_step_s": first,
            "step_s": statistics.median(wall), "step_cpu_s": statistics.median(cpu),
            "loadavg": load + [round(os.getloadavg()[0], 2)]}


def dense_mode(args):
    out = {"batch": args.batch, "image": args.image, "variants": {}}
    for variant in (args.impls.split(",") if args.impls else DENSE_VARIANTS):
        print(f"   {variant}", flush=True)
        argv = ["dense", "--variant", variant, "--batch", args.batch, "--image", args.image,
                "--repeat", args.model_repeat, "--num-classes", args.num_classes]
        try:
            out["variants"][variant] = run_probe(argv, timeout=args.compile_cap)
        except ProbeFailed as exc:
            out["variants"][variant] = {"error": str(exc)[-300:]}
        print(f"   {variant}: {out['variants'][variant]}", flush=True)
    got = {v: r for v, r in out["variants"].items() if "error" not in r}
    for a, b in DENSE_RATIOS:
        if a in got and b in got:
            key = f"{a.replace('acmix_resnet50:', '')}_over_{b.replace('acmix_resnet50:', '')}"
            out[f"{key}_mem"] = got[a]["peak_mb"] / got[b]["peak_mb"]
            out[f"{key}_time"] = got[a]["step_s"] / got[b]["step_s"]
            out[f"{key}_cpu_time"] = got[a]["step_cpu_s"] / got[b]["step_cpu_s"]
    print(json.dumps({k: round(v, 3) for k, v in out.items() if k.endswith(("_mem", "_time"))}),
          flush=True)
    return out
