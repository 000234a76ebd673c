"""The learned mixing rates of every ACmix layer: rate1 (attention path) and rate2
(convolution path), the paper's analysis of what the two paths contribute, per stage.

    python -m mindspore_acmix.tools.rates CHECKPOINT [--png rates.png] [--json rates.json] [--ema]

Prints one line per layer (network order) and writes a figure (every layer in network order,
stages named: both rates as bars, and below them the ratio rate1 / rate2 on one axis) and/or
a JSON file
({"layers": [{name, stage, block, rate1, rate2, ratio}], "stages": [...]}). Works for every
family whose ACmix layers hold parameters named `<layer>.rate1` / `<layer>.rate2` (ResNet:
layerS.B.conv2, Swin: layers.S.blocks.B.attn, PVT: blockS.B.attn). Training runs write
rates.png beside curves.png after every epoch for ACmix models (engine/rate_figures.py,
which holds the reading and the figure).
"""
import json
import os
import sys

from .. import atomic, cli
from ..checkpoint import read_checkpoint
from ..engine.rate_figures import collect, plot


class RatesError(ValueError):
    """Nothing to analyse (no ACmix layer), or an output that cannot be written."""


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
                         + " (parameters named <layer>.rate1 / <layer>.rate2): is it an ACmix "
                         "model?")
    return layers


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
            plot(layers, args.png, f"ACmix rates in {os.path.basename(args.checkpoint)}")
    except OSError as exc:
        raise RatesError(f"cannot write {exc.filename or 'the output'} "
                         f"({exc.strerror or exc})") from None
    return 0


def run(argv=None):
    """The command line: exit code 0, or 2 with one `error:` line."""
    return cli.run(main, argv, extra_errors=(RatesError,))


if __name__ == "__main__":
    sys.exit(run())
