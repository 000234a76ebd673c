"""rates.png of a training run: the learned mixing rates of every ACmix layer, rate1 (attention
path) and rate2 (convolution path), per stage (the paper's analysis of what the two paths
contribute). The trainer writes it after every epoch for ACmix models; the command line
`python -m mindspore_acmix.tools.rates` reads the same from a checkpoint.

Works for every family whose ACmix layers hold parameters named `<layer>.rate1` /
`<layer>.rate2` (ResNet: layerS.B.conv2, Swin: layers.S.blocks.B.attn, PVT: blockS.B.attn).
"""
import math
import os
import re

from ..checkpoint import EMA_PREFIX
from .report import save_figure

# layerS.B (ResNet), layers.S.blocks.B (Swin), blockS.B (PVT), and the like
STAGE = re.compile(r"^(layers|layer|blocks|block|stages|stage)\.?(\d+)\.(?:blocks\.)?(\d+)")


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


def from_network(net):
    return collect((p.name, p.asnumpy().reshape(-1)[0]) for p in net.get_parameters()
                   if p.name.endswith((".rate1", ".rate2")))


def rates_figure(layers, title=""):
    """Every ACmix layer in network order on one x axis, stages separated and named: above,
    rate1 (attention) and rate2 (convolution) as bars; below, rate1 / rate2 on one axis for
    all stages (values written on the points), with a dashed line where the paths weigh the
    same."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    n = len(layers)
    x = list(range(n))
    fig, (ax_rate, ax_ratio) = plt.subplots(
        2, 1, sharex=True, figsize=(max(5.0, 1.8 + 0.45 * n), 5.4),
        gridspec_kw=dict(height_ratios=(3, 2), hspace=0.08))
    ax_rate.bar([i - 0.2 for i in x], [g["rate1"] for g in layers], 0.4, color="tab:blue",
                label="rate1 (attention)")
    ax_rate.bar([i + 0.2 for i in x], [g["rate2"] for g in layers], 0.4, color="tab:orange",
                label="rate2 (convolution)")
    ax_rate.axhline(0, color="black", linewidth=0.5)
    ax_rate.set_ylabel("learned rate")
    ax_rate.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8,
                   frameon=False)

    ratios = [g["ratio"] if g["ratio"] is not None else math.nan for g in layers]
    ax_ratio.plot(x, ratios, "k.-")
    ax_ratio.axhline(1, color="gray", linestyle="--", linewidth=0.8)
    ax_ratio.set_ylabel("rate1 / rate2")
    ax_ratio.margins(y=0.25)  # room for the values written above the points
    if n <= 24:
        for i, r in zip(x, ratios):
            if not math.isnan(r):
                ax_ratio.annotate(f"{r:.2f}", (i, r), textcoords="offset points", xytext=(0, 6),
                                  ha="center", fontsize=7,
                                  bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none"))

    # ticks: the block's number within its stage (1-based); stage names under them
    stages = [g["stage"] for g in layers]
    starts = [i for i in x if i == 0 or stages[i] != stages[i - 1]] + [n]
    labels = []
    below = blended_transform_factory(ax_ratio.transData, ax_ratio.transAxes)
    for a, b in zip(starts, starts[1:]):
        labels += [str(k + 1) for k in range(b - a)]
        ax_ratio.text((a + b - 1) / 2, -0.2, f"stage {stages[a]}", transform=below,
                      ha="center", va="top", fontsize=9)
        if a:
            for ax in (ax_rate, ax_ratio):
                ax.axvline(a - 0.5, color="gray", linewidth=0.8)
    ax_ratio.set_xticks(x)
    ax_ratio.set_xticklabels(labels, fontsize=8)
    ax_ratio.set_xlim(-0.6, n - 0.4)
    ax_ratio.set_xlabel("block", fontsize=8, labelpad=1)
    ax_ratio.xaxis.set_label_coords(-0.02, -0.08, transform=ax_ratio.transAxes)
    ax_ratio.xaxis.label.set_horizontalalignment("right")
    if title:
        fig.suptitle(title)
    return fig


def plot(layers, path, title=""):
    """rates_figure as a PNG at `path`."""
    return save_figure(rates_figure(layers, title), path)


def write_figure_of_network(net, out_dir, title=""):
    """rates.png of a network in `out_dir` (training runs); nothing for non-ACmix models."""
    layers = from_network(net)
    if layers:
        plot(layers, os.path.join(out_dir, "rates.png"), title)
