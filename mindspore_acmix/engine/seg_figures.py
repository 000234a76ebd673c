"""predictions.png of a segmentation run: for a few validation images, the input, the ground
truth and the prediction side by side, coloured by class, with a legend and a title."""
import os

import numpy as np

from .. import atomic

IGNORE_COLOUR = (255, 255, 255)


def palette(num_classes):
    """A fixed RGB colour per class (uint8 (K, 3)): black for class 0 (the background of the
    built-in data), then well-separated hues."""
    import matplotlib

    colours = [(0, 0, 0)] + [tuple(int(255 * c) for c in matplotlib.colormaps["tab20"](i)[:3])
                             for i in range(19)]
    rng = np.random.default_rng(0)  # beyond 20 classes (ADE20K): fixed random colours
    extra = rng.integers(0, 256, (max(num_classes - len(colours), 0), 3))
    return np.concatenate([np.array(colours, np.uint8), extra.astype(np.uint8)])[:num_classes]


def colourise(label, colours, ignore_index):
    """(H, W) class map -> (H, W, 3) uint8; ignored pixels white."""
    out = np.empty(label.shape + (3,), np.uint8)
    out[:] = IGNORE_COLOUR
    known = (label >= 0) & (label < len(colours))
    out[known] = colours[label[known]]
    return out


def denormalise(image, mean, std):
    """A normalised (3, H, W) image back to (H, W, 3) uint8."""
    rgb = image.transpose(1, 2, 0) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    return np.clip(rgb, 0, 255).round().astype(np.uint8)


def write_predictions(examples, class_names, cfg, title, out_dir):
    """predictions.png in out_dir from [(normalised image, label, prediction)]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not examples:
        return
    colours = palette(len(class_names))
    fig, axes = plt.subplots(len(examples), 3, figsize=(7.5, 2.4 * len(examples) + 1.2),
                             squeeze=False)
    for row, (image, label, pred) in zip(axes, examples):
        h, w = label.shape
        panels = (denormalise(image, cfg["mean"], cfg["std"])[:h, :w],
                  colourise(label, colours, cfg["ignore_index"]),
                  colourise(np.asarray(pred), colours, cfg["ignore_index"]))
        for ax, panel, name in zip(row, panels, ("input", "ground truth (white: ignored)",
                                                 "prediction")):
            ax.imshow(panel, interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.axis("off")
    shown = class_names[:20]  # a legend of 150 ADE20K classes would hide the figure
    fig.legend(handles=[Patch(facecolor=colours[i] / 255.0, edgecolor="grey", label=name)
                        for i, name in enumerate(shown)],
               loc="lower center", ncol=min(len(shown), 6), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.9 / (2.4 * len(examples) + 1.2) + 0.04, 1, 0.97))
    with atomic.writing(os.path.join(out_dir, "predictions.png")) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
