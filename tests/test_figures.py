"""The figures a run writes, read as a person reads them (issue 26): curves.png (integer
epoch ticks, nothing at the frame's edge, a title, the metrics its records hold) and
rates.png (one shared ratio axis across stages, blocks numbered within named stages)."""
import math

import matplotlib.pyplot as plt
import pytest

from mindspore_acmix.engine.report import curves_figure
from mindspore_acmix.engine.tasks import ClassificationTask
from mindspore_acmix.engine.rate_figures import rates_figure


def classification(epochs):
    """curves_figure's arguments for `epochs` epochs of classification records."""
    records = [dict(epoch=e, train_loss=2.5 / e, val_loss=2.0 / e, val_top1=0.5 + 0.1 * e,
                    val_top5=min(1.0, 0.9 + 0.05 * e)) for e in range(1, epochs + 1)]
    return [r["epoch"] for r in records], *ClassificationTask(None).curves(records)


def test_curves_read_at_a_glance():
    fig = curves_figure(*classification(4), title="acmix_resnet_tiny on digits")
    ax_loss, ax_metric = fig.axes
    assert fig._suptitle.get_text() == "acmix_resnet_tiny on digits"
    assert list(ax_metric.get_xticks()) == [1, 2, 3, 4] == list(ax_loss.get_xticks())
    assert ax_loss.get_xlim() == (0.5, 4.5)
    assert ax_metric.get_ylim()[1] > 100 and ax_loss.get_ylim()[1] > 2.5  # top-5 at 100%
    assert [t.get_text() for t in ax_metric.get_legend().get_texts()] == [
        "val top-1 (best 90.0%)", "val top-5 (best 100.0%)"]
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["train", "val"]
    plt.close(fig)
    one = curves_figure(*classification(1))
    assert [list(ax.get_xticks()) for ax in one.axes] == [[1], [1]]
    plt.close(one)


def test_curves_of_an_iteration_run():
    fig = curves_figure([2000, 4000], [("train", [1.0, 0.8])], [("val mIoU", [0.3, 0.4])],
                        "score", x="iter")
    assert fig.axes[1].get_xlabel() == "iter" and fig.axes[0].get_xlim() == (1000, 5000)
    assert fig.axes[1].get_ylabel() == "score (%)"
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["val mIoU (best 40.0%)"]
    plt.close(fig)


def test_rates_share_one_ratio_axis_across_stages():
    layers = [dict(name=n, stage=s, block=b, rate1=r1, rate2=r2, ratio=r1 / r2 if r2 else None)
              for n, s, b, r1, r2 in [("layer1.0", 1, 0, 0.6, 0.4), ("layer2.0", 2, 0, 0.9, 0.6),
                                      ("layer2.1", 2, 1, 0.3, 0.6), ("layer3.0", 3, 0, 0.5, 0.0)]]
    fig = rates_figure(layers, "acmix_resnet_tiny on digits, epoch 4")
    ax_rate, ax_ratio = fig.axes  # one axes for the ratio of every stage, no twin per stage
    assert ax_ratio.get_ylabel() == "rate1 / rate2" and ax_rate.get_ylabel() == "learned rate"
    ratio = ax_ratio.get_lines()[0].get_ydata()
    assert list(ratio[:3]) == pytest.approx([1.5, 1.5, 0.5]) and math.isnan(ratio[3])
    assert [t.get_text() for t in ax_ratio.get_xticklabels()] == ["1", "1", "2", "1"]
    texts = [t.get_text() for t in ax_ratio.texts]
    assert [t for t in texts if t.startswith("stage")] == ["stage 1", "stage 2", "stage 3"]
    assert [t for t in texts if not t.startswith("stage")] == ["1.50", "1.50", "0.50"]
    plt.close(fig)
