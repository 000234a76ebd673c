"""Preflight: check a machine before a long job on it (docs/preflight.md).

    python -m mindspore_acmix.tools.preflight --device Ascend|GPU|CPU [--json PATH]

Runs on one device, in a few minutes, what a long run relies on and what only that device
can show, and prints one line per check (PASS/FAIL) and writes them to one JSON:

- golden: the official code's outputs and gradients (tests/data/golden, in a clone) against
  every implementation this device uses: ACmix's attention and convolutions (a layer and a
  strided bottleneck), SAN's pairwise and patchwise operators;
- train_step: one training step of a tiny member of every family (ResNet, ACmix-ResNet,
  Swin-ACmix, PVT-ACmix, SAN-ACmix) in float32, from the same weights and batch: the loss
  before and after the update, compared with the same step on CPU (in a subprocess);
- amp_o2: the dtypes of the compiled AMP O2 training step (its saved graph) of a Swin-ACmix
  and an ACmix-ResNet (on CPU the Swin-ACmix only): norms, softmax and loss in float32,
  convolutions and matmuls in float16 (engine/amp.py);
- digits: one epoch of the built-in digits recipe through the Trainer (the device's AMP
  level, loss scaling and overflow check), which must learn;
- export: MindIR export of a trained-size network and its reload, same outputs;
- benchmark: forward + backward time of an ACmix layer against a 3x3 convolution of the
  same width (the layer benchmark's ratio, at one small shape).

Exit status 0 when every check passed, 1 otherwise, 2 for a usage error.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

CHECKS = ("golden", "train_step", "amp_o2", "digits", "export", "benchmark")

# tiny members of each family and their input size (stage maps >= 4 wherever ACmix's or
# SAN's 7x7 reflection padding needs it)
SWIN = dict(img_size=32, embed_dim=12, depths=(1, 1, 1), num_heads=(3, 3, 3), window_size=2)
PVT = dict(img_size=32, embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 2, 4),
           mlp_ratios=(2, 2, 2, 2), depths=(1, 1, 1, 1), sr_ratios=(4, 2, 1, 1))
# SAN: five stages each after a 2x2 max-pool; 3x3 windows keep the last (2x2) map valid
SAN_MICRO = dict(layers=[1] * 5, kernels=[3] * 5, base_planes=16, share_planes=4)
TINY = {  # family: (registered model or SAN class arguments, kwargs, image size)
    "resnet": ("resnet_tiny", {}, 32),
    "acmix_resnet": ("acmix_resnet_tiny", {}, 32),
    "swin_acmix": ("swin_acmix_tiny", SWIN, 32),
    "pvt_acmix": ("pvt_acmix_tiny", PVT, 32),
    "san": ("san", dict(SAN_MICRO, sa_type=0), 64),
    "san_acmix": ("san_acmix", dict(SAN_MICRO, sa_type=1), 64),
}
# train_step: one network per family (the ACmix members also run the plain paths)
STEP_FAMILIES = ("acmix_resnet", "swin_acmix", "pvt_acmix", "san_acmix")
# amp_o2: LayerNorm and the window softmax (Float32Softmax); BatchNorm and the halo
# attention's scores (Float32Scores). On CPU, where AMP does not run in training and the
# halo graph takes long to compile, the first only (a check of the check).
AMP_FAMILIES = ("swin_acmix", "acmix_resnet")
NUM_CLASSES = 4
# relative tolerances against float64-accurate references (CPU float32 meets the golden
# README's 1e-5; Ascend may run float32 convolutions and matmuls through float16 cubes)
GOLDEN_REL = {"CPU": 1e-5, "GPU": 1e-4, "Ascend": 2e-3}
LOSS_REL = 2e-3  # device against CPU, one step of a tiny network from the same weights


def build_tiny(family, num_classes=NUM_CLASSES, seed=0):
    """(network, input size) of a family's tiny member, initialised from `seed`."""
    import mindspore as ms

    from ..factory import create_model
    from ..models.san import SAN

    name, kwargs, size = TINY[family]
    ms.set_seed(seed)
    if name in ("san", "san_acmix"):
        kwargs = dict(kwargs)
        net = SAN(kwargs.pop("sa_type"), kwargs.pop("layers"), kwargs.pop("kernels"),
                  num_classes=num_classes, acmix=name == "san_acmix", **kwargs)
    else:
        net = create_model(name, num_classes=num_classes, **kwargs)
    return net, size


def tiny_batch(size, batch=2, num_classes=NUM_CLASSES, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 3, size, size)).astype(np.float32),
            rng.integers(0, num_classes, batch).astype(np.int32))


# ----------------------------------------------------------------------------- checks
def check_golden(device):
    from ..layers import place_network
    from ..layers.acmix import ACmix
    from ..layers.placement import implementations
    from ..layers.san import SAM
    from ..models.resnet import Bottleneck, conv1x1
    from .golden import GOLDEN_DIR, golden_deviations, load_golden, official_state
    from mindspore import nn

    if not os.path.isdir(GOLDEN_DIR):
        return {"passed": False, "error": f"no golden data at {GOLDEN_DIR}: run the preflight "
                                          "from a clone of the repository"}

    def acmix(ctor):
        return ACmix(**{k: v for k, v in ctor.items() if k != "cls"})

    def bottleneck(ctor):
        out = ctor["planes"] * Bottleneck.expansion
        down = nn.SequentialCell([conv1x1(ctor["inplanes"], out, ctor["stride"]),
                                  nn.BatchNorm2d(out)])
        net = Bottleneck(ctor["inplanes"], ctor["planes"], ctor["stride"], down,
                         acmix=dict(kernel_att=ctor["k_att"], head=ctor["head"],
                                    kernel_conv=ctor["k_conv"]))
        net.set_train(False)  # the golden files were made in eval mode
        return net

    def sam(ctor):
        return SAM(**{k: v for k, v in ctor.items() if k != "cls"})

    rel = GOLDEN_REL.get(device, 2e-3)
    cases = {"acmix_in8_out16_h2_k5": acmix, "bottleneck_32_16_s2_down": bottleneck,
             "san_sam_pair_c32": sam, "san_sam_patch_c32": sam}
    worst, used, failures = {}, {}, []
    for case, build in cases.items():
        ctor, golden = load_golden(case)
        net = place_network(build(ctor))
        used[case] = _implementations_of(net, implementations)
        found = golden_deviations(net, golden, official_state(golden), rel, case)
        worst[case] = max(err / bound if bound else float("inf") for _, err, bound in found)
        failures += [f"{what}: {err:.3g} > {bound:.3g}" for what, err, bound in found
                     if not err <= bound]
    return {"passed": not failures, "rel_tolerance": rel, "implementations": used,
            "worst_error_over_bound": worst, "failures": failures[:5]}


def _implementations_of(net, implementations):
    from ..layers.san import SAM

    found = implementations(net)
    san = sorted({cell.san_impl for _, cell in net.cells_and_names() if isinstance(cell, SAM)})
    if san:
        found["san"] = san
    return {kind: names for kind, names in found.items() if names}


def train_step_losses(families=STEP_FAMILIES):
    """{family: [loss of the first step, loss of the second]} of SGD on one fixed batch,
    float32, graph mode."""
    from mindspore import Tensor, nn

    from ..engine.step import TrainStep
    from ..layers import place_network

    losses = {}
    for family in families:
        net, size = build_tiny(family)
        place_network(net)
        x, y = tiny_batch(size)
        opt = nn.SGD(net.trainable_params(), 0.05)
        step = TrainStep(net, nn.CrossEntropyLoss(), opt, 1, None, False)
        key = Tensor(np.int32(0))
        net.set_train(True)
        losses[family] = [float(step(Tensor(x), Tensor(y), key)[0].asnumpy()) for _ in range(2)]
    return losses


def check_train_step(device):
    losses = train_step_losses()
    result = {"losses": losses}
    failures = [f"{family}: loss {a:.4f} -> {b:.4f} does not drop" for family, (a, b)
                in losses.items() if not (np.isfinite([a, b]).all() and b < a)]
    if device != "CPU":
        reference = _cpu_reference()
        result["cpu_losses"] = reference
        for family, ours in losses.items():
            ref = reference[family]
            err = max(abs(o - r) / max(abs(r), 1e-6) for o, r in zip(ours, ref))
            if not err <= LOSS_REL:
                failures.append(f"{family}: {ours} on {device} vs {ref} on CPU "
                                f"(relative {err:.2g} > {LOSS_REL})")
    result.update(passed=not failures, failures=failures)
    return result


def _cpu_reference():
    """train_step_losses() computed on CPU in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cpu.json")
        proc = subprocess.run([sys.executable, "-m", __name__, "--device", "CPU",
                               "--train-step-losses", out],
                              capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            raise RuntimeError(f"the CPU reference step failed: {' '.join(tail)}")
        with open(out, encoding="utf-8") as fh:
            return json.load(fh)


def check_amp_o2(device):
    from mindspore import Tensor, nn

    from ..deploy import make_portable
    from ..engine.amp import mixed_precision
    from ..engine.step import TrainStep
    from .graph_dtypes import amp_violations, compiled_ops

    result, failures = {}, []
    for family in AMP_FAMILIES if device != "CPU" else AMP_FAMILIES[:1]:
        net, size = build_tiny(family)
        make_portable(net)  # the operators Ascend and GPU compile
        amp_net = mixed_precision(net, "O2")
        opt = nn.SGD(net.trainable_params(), 0.01)
        step = TrainStep(amp_net, nn.CrossEntropyLoss(), opt, 1, None, use_loss_scale=True)
        x, y = tiny_batch(size)
        step.set_train(True)
        ops_ = compiled_ops(lambda: step(Tensor(x), Tensor(y), Tensor(np.int32(0))))
        problems, summary = amp_violations(ops_)
        result[family] = summary
        failures += [f"{family}: {p}" for p in problems]
    result.update(passed=not failures, failures=failures[:10])
    return result


def check_digits(device, workdir):
    from .. import config as config_lib
    from ..engine.trainer import Trainer

    cfg = config_lib.resolve(overrides=[
        ("model", "acmix_resnet_tiny"), ("num_classes", 10), ("dataset", "digits"),
        ("image_size", 32), ("eval_resize", 32), ("crop_scale", [0.6, 1.0]), ("hflip", 0.0),
        ("mean", [40.0] * 3), ("std", [75.0] * 3), ("label_smoothing", 0.1),
        ("batch_size", 32), ("epochs", 1), ("optimizer", "adamw"), ("lr", 0.002),
        ("lr_batch_size", 32), ("weight_decay", 0.05), ("warmup_epochs", 1.0),
        ("log_interval", 1000), ("keep_checkpoints", 1),
        ("num_workers", max(1, min(4, os.cpu_count() or 1))),
        ("output_dir", os.path.join(workdir, "digits"))])
    lines = []
    trainer = Trainer(cfg, device, log=lines.append)
    start = time.time()
    top1 = float(trainer.fit())
    return {"passed": top1 >= DIGITS_MIN_TOP1, "val_top1": top1, "min_top1": DIGITS_MIN_TOP1,
            "amp_level": trainer.amp, "seconds": time.time() - start}


# 10 classes (chance 0.1): the first epoch of the recipe (configs/digits/acmix_resnet_tiny.yaml,
# its warm-up shortened to 20% of the epoch) must at least triple chance
DIGITS_MIN_TOP1 = 0.3


def check_export(device, workdir):
    import mindspore as ms
    from mindspore import Tensor, nn

    from ..deploy import export_network, input_shape, prepare_for_export

    net, size = build_tiny("acmix_resnet")
    prepare_for_export(net)
    x = tiny_batch(size)[0][:1]
    expected = net(Tensor(x)).asnumpy()
    path = export_network(net, "MINDIR", input_shape(net, 1, size),
                          os.path.join(workdir, "acmix_resnet_tiny"))
    loaded = nn.GraphCell(ms.load(path))(Tensor(x)).asnumpy()
    err = float(np.abs(loaded - expected).max())
    return {"passed": bool(err <= 1e-5 * max(1.0, float(np.abs(expected).max()))),
            "max_abs_difference": err, "file_bytes": os.path.getsize(path)}


def check_benchmark(device, repeat=5):
    from mindspore import Tensor, nn

    from ..layers import place_network
    from ..layers.acmix import ACmix
    from ..layers.placement import implementations

    channels, size, batch = 32, 16, 4
    x = Tensor(np.random.default_rng(0).standard_normal((batch, channels, size, size))
               .astype(np.float32))
    layers = {"acmix": place_network(ACmix(channels, channels)),
              "conv3x3": nn.Conv2d(channels, channels, 3, pad_mode="same")}
    times = {}
    for name, layer in layers.items():
        step = _ForwardBackward(layer)
        step(x)[0].asnumpy()  # compile
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            step(x)[0].asnumpy()
            runs.append(time.perf_counter() - start)
        times[name] = float(np.median(runs))
    ratio = times["acmix"] / times["conv3x3"]
    return {"passed": bool(np.isfinite(ratio)), "shape": [batch, channels, size, size],
            "seconds_fwd_bwd": times, "acmix_over_conv3x3": ratio,
            "implementations": implementations(layers["acmix"])}


def _ForwardBackward(layer):
    """A cell returning (sum of layer(x), its gradients), compiled as one graph."""
    import mindspore as ms
    from mindspore import nn

    class SumOf(nn.Cell):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def construct(self, x):
            return self.layer(x).sum()

    class ForwardBackward(nn.Cell):
        def __init__(self):
            super().__init__()
            self.grad = ms.value_and_grad(SumOf(), 0, layer.trainable_params())

        def construct(self, x):
            return self.grad(x)

    return ForwardBackward()


# ----------------------------------------------------------------------------- driver
def run_checks(device, names, log=print):
    """{check: {"passed": bool, "seconds": float, ...}} of the named checks, in order."""
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            start = time.time()
            try:
                fn = globals()["check_" + name]
                args = (device, workdir) if name in ("digits", "export") else (device,)
                result = fn(*args)
            except Exception as exc:  # a check that crashes fails; the others still run
                result = {"passed": False, "error": f"{type(exc).__name__}: "
                                                    f"{_first_line(exc)}",
                          "traceback": traceback.format_exc(limit=6)}
            result["seconds"] = round(time.time() - start, 2)
            results[name] = result
            log(f"{'PASS' if result['passed'] else 'FAIL'} {name} ({result['seconds']:.1f} s)"
                f"{_summary(result)}")
    return results


def _plain(value):
    """NumPy scalars in a result, for json."""
    return value.item() if hasattr(value, "item") else str(value)


def _first_line(exc):
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _summary(result):
    if result.get("error"):
        return ": " + result["error"]
    if result.get("failures"):
        return ": " + "; ".join(result["failures"][:3])
    return ""


def main(argv):
    from ..runtime import setup_runtime, working_directory

    parser = argparse.ArgumentParser(
        description="Check this machine before a long job: golden parity, a training step "
                    "per family, AMP dtypes, a short digits run, export, a layer benchmark.")
    parser.add_argument("--device", required=True, choices=("Ascend", "GPU", "CPU"))
    parser.add_argument("--json", metavar="PATH", help="write every check's result here")
    parser.add_argument("--checks", default=",".join(CHECKS),
                        help=f"comma-separated subset of {','.join(CHECKS)}")
    # internal: the CPU reference of train_step, written by a subprocess
    parser.add_argument("--train-step-losses", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [n for n in args.checks.split(",") if n]
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}: choose from {', '.join(CHECKS)}")
    json_path = os.path.abspath(args.json) if args.json else None
    device = setup_runtime(args.device)
    if args.train_step_losses:
        with open(args.train_step_losses, "w", encoding="utf-8") as fh:
            json.dump(train_step_losses(), fh)
        return 0
    import mindspore as ms

    start = time.time()
    with working_directory():  # MindSpore's own files (analyze_fail.ir ...) go there
        results = run_checks(device, names)
    report = {"device": device, "mindspore": ms.__version__, "python": platform.python_version(),
              "host": platform.node(), "seconds": round(time.time() - start, 1),
              "passed": all(r["passed"] for r in results.values()), "checks": results}
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, default=_plain)
    print(f"preflight on {device}: {sum(r['passed'] for r in results.values())}/{len(results)} "
          f"checks passed in {report['seconds']:.0f} s" + (f"; {json_path}" if json_path else ""))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    from ..cli import run

    sys.exit(run(main))
