"""predictions.png of a detection run (and the predict-boxes command): validation images with
the true boxes (dashed) and the predicted ones (solid, with class and score)."""
import os

import numpy as np

from .. import atomic
from .seg_figures import denormalise, palette


def draw_boxes(ax, boxes, labels, colours, class_names, scores=None, dashed=False):
    from matplotlib.patches import Rectangle

    for i, (box, label) in enumerate(zip(boxes, labels)):
        colour = colours[int(label) % len(colours)] / 255.0
        ax.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False,
                               edgecolor=colour, linewidth=1.2, linestyle="--" if dashed else "-"))
        if scores is not None:
            ax.text(box[0], box[1], f"{class_names[int(label)]} {scores[i]:.2f}", color="white",
                    fontsize=6, va="bottom", bbox=dict(facecolor=colour, pad=0.5, linewidth=0))


def write_detections(examples, class_names, cfg, title, out_dir, min_score=0.3,
                     name="predictions.png"):
    """`name` (predictions.png) in out_dir from [(normalised padded image, img_shape, boxes, scores,
    labels, true boxes, true labels)] (boxes on the resized image); predictions below
    min_score are not drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not examples:
        return
    colours = palette(len(class_names) + 1)[1:]  # palette's black is for a background class
    cols = min(len(examples), 4)
    # the legend on a line of its own and room for it: one image's figure cut it off
    fig, axes = plt.subplots(1, cols, figsize=(max(3 * cols, 4.5), 3.6), squeeze=False)
    for ax, (image, shape, boxes, scores, labels, gt_boxes, gt_labels) in zip(axes[0], examples):
        ax.imshow(denormalise(image, cfg["mean"], cfg["std"])[:shape[0], :shape[1]],
                  interpolation="nearest")
        draw_boxes(ax, gt_boxes, gt_labels, colours, class_names, dashed=True)
        # ascending score: where boxes overlap, the best one's box and label are drawn on top
        shown = [i for i in np.argsort(scores, kind="stable") if scores[i] >= min_score]
        draw_boxes(ax, boxes[shown], labels[shown], colours, class_names, scores[shown])
        ax.axis("off")
    legend = f"shown: score >= {min_score}"
    if any(len(gt_boxes) for *_, gt_boxes, _ in examples):
        legend = "dashed: true boxes; " + legend
    fig.suptitle(f"{title}\n({legend})", fontsize=9)
    fig.tight_layout()
    with atomic.writing(os.path.join(out_dir, name)) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
