"""The learned mixing rates of every ACmix layer: rate1 (attention path) and rate2
(convolution path), the paper's analysis of what the two paths contribute, per stage.

    python -m mindspore_acmix.tools.rates CHECKPOINT [--png rates.png] [--json rates.json] [--ema]

Prints one line per layer (network order) and writes a figure (one panel per stage: both
rates per block, and the ratio rate1 / rate2 on the right axis) and/or a JSON file
({"layers": [{name, stage, block, rate1, rate2, ratio}], "stages": [...]}). Works for every
family whose ACmix layers hold parameters named `<layer>.rate1` / `<layer>.rate2` (ResNet:
layerS.B.conv2, Swin: layers.S.blocks.B.attn, PVT: blockS.B.attn). Training runs write
rates.png beside curves.png after every epoch for ACmix models (engine/trainer.py).
"""
import argparse
import json
import math
import os
import re
import sys

from .. import atomic, cli
from ..checkpoint import EMA_PREFIX, read_checkpoint

# layerS.B (ResNet), layers.S.blocks.B (Swin), blockS.B (PVT), and the like
STAGE = re.compile(r"^(layers|layer|blocks|block|stages|stage)\.?(\d+)\.(?:blocks\.)?(\d+)")


class RatesError(ValueError):
    """Nothing to analyse (no ACmix layer), or an output that cannot be written."""


def _natural(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def collect(named_values, ema=False):
    """[{name, stage, block, rate1, rate2, ratio}] in network order from (parameter name,
    float value) pairs. Optimizer slots (moments.<p>, adam_m.<p>) and EMA copies (ema.<p>)
    are told apart from the network's own rates by their prefix; ema=True reads the EMA
    copies instead."""
    values = dict(named_values)
    rate1 = {n[:-len(".rate1")] for n in values if n.endswith(".rate1")}
    if ema:
        own = {n[len(EMA_PREFIX):] for n in rate1 if n.startswith(EMA_PREFIX)}
        key = (EMA_PREFIX + "{}").format
    else:  # a name is a slot when another candidate is its suffix after a dot
        own = {n for n in rate1 if not any(n.endswith("." + m) for m in rate1 if m != n)}
        key = "{}".format
    layers = []
    for name in sorted(own, key=_natural):
        if key(name) + ".rate2" not in values:
            continue
        r1, r2 = float(values[key(name) + ".rate1"]), float(values[key(name) + ".rate2"])
        match = STAGE.match(name)
        # Swin's layers.S counts from 0, ResNet's layerS and PVT's blockS from 1
        stage = (int(match.group(2)) + (match.group(1) == "layers")) if match else 1
        block = int(match.group(3)) if match else len(layers)
        layers.append(dict(name=name, stage=stage, block=block, rate1=r1, rate2=r2,
                           ratio=r1 / r2 if r2 != 0 else None))
    return layers


def summary(layers):
    """Per stage: layers, mean rate1, mean rate2, mean |rate1| / (|rate1| + |rate2|)."""
    stages = []
    for s in sorted({layer["stage"] for layer in layers}):
        group = [layer for layer in layers if layer["stage"] == s]
        share = [abs(g["rate1"]) / (abs(g["rate1"]) + abs(g["rate2"]))
                 for g in group if g["rate1"] or g["rate2"]]
        stages.append(dict(stage=s, layers=len(group),
                           mean_rate1=sum(g["rate1"] for g in group) / len(group),
                           mean_rate2=sum(g["rate2"] for g in group) / len(group),
                           attention_share=sum(share) / len(share) if share else None))
    return stages


def from_checkpoint(path, ema=False):
    params = read_checkpoint(path)
    layers = collect(((n, v.asnumpy().reshape(-1)[0]) for n, v in params.items()
                      if n.endswith((".rate1", ".rate2"))), ema)
    if not layers:
        raise RatesError(f"checkpoint {path} holds no ACmix rates"
                         + (" under ema." if ema else "")
                         + " (parameters named <layer>.rate1 / <layer>.rate2): is it an ACmix model?")
    return layers


def from_network(net):
    return collect((p.name, p.asnumpy().reshape(-1)[0]) for p in net.get_parameters()
                   if p.name.endswith((".rate1", ".rate2")))


def plot(layers, path, title=""):
    """One panel per stage: rate1 and rate2 per block as bars, rate1 / rate2 as a line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = sorted({layer["stage"] for layer in layers})
    widths = [max(2, sum(layer["stage"] == s for layer in layers)) for s in stages]
    fig, axes = plt.subplots(1, len(stages), figsize=(2.2 + 0.9 * sum(widths), 3.6),
                             gridspec_kw=dict(width_ratios=widths), squeeze=False)
    for ax, s in zip(axes[0], stages):
        group = [layer for layer in layers if layer["stage"] == s]
        x = list(range(len(group)))
        ax.bar([i - 0.2 for i in x], [g["rate1"] for g in group], 0.4, label="rate1 (attention)",
               color="tab:blue")
        ax.bar([i + 0.2 for i in x], [g["rate2"] for g in group], 0.4,
               label="rate2 (convolution)", color="tab:orange")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xticks(x)
        ax.set_xticklabels([str(g["block"]) for g in group])
        ax.set_xlabel(f"stage {s}: block")
        ratio = ax.twinx()
        ratio.plot(x, [g["ratio"] if g["ratio"] is not None else math.nan for g in group],
                   "k.-", label="rate1 / rate2")
        ratio.tick_params(labelsize=8)
        if s == stages[-1]:
            ratio.set_ylabel("rate1 / rate2")
    axes[0][0].set_ylabel("rate")
    handles = axes[0][0].get_legend_handles_labels()[0] + [ratio.get_lines()[0]]
    fig.legend(handles, [h.get_label() for h in handles], loc="upper center", ncol=3,
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, y=0.02, va="bottom", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 0.9))
    with atomic.writing(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def write_figure_of_network(net, out_dir):
    """rates.png of a network in `out_dir` (training runs); nothing for non-ACmix models."""
    layers = from_network(net)
    if layers:
        plot(layers, os.path.join(out_dir, "rates.png"))


def main(argv):
    parser = cli.parser("Learned rate1 (attention) and rate2 (convolution) of every ACmix layer.")
    parser.add_argument("checkpoint", help="a .ckpt of an ACmix model (train.py, convert)")
    parser.add_argument("--png", help="write the figure here")
    parser.add_argument("--json", help="write the rates here as JSON")
    parser.add_argument("--ema", action="store_true",
                        help="the EMA weights of a run trained with ema: true")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    args = parser.parse_args(argv)
    layers = from_checkpoint(args.checkpoint, args.ema)
    for layer in layers:
        ratio = "inf" if layer["ratio"] is None else f"{layer['ratio']:.3f}"
        print(f"stage {layer['stage']}  {layer['name']:<32} rate1 {layer['rate1']:+.4f}  "
              f"rate2 {layer['rate2']:+.4f}  rate1/rate2 {ratio}")
    try:
        if args.json:
            atomic.write_text(args.json, json.dumps(
                {"checkpoint": os.path.abspath(args.checkpoint), "ema": args.ema,
                 "layers": layers, "stages": summary(layers)}, indent=1) + "\n")
        if args.png:
            plot(layers, args.png, os.path.basename(args.checkpoint))
    except OSError as exc:
        raise RatesError(f"cannot write {exc.filename or 'the output'} "
                         f"({exc.strerror or exc})") from None
    return 0


def run(argv=None):
    """The command line: exit code 0, or 2 with one `error:` line."""
    return cli.run(main, argv, extra_errors=(RatesError,))


if __name__ == "__main__":
    sys.exit(run())
