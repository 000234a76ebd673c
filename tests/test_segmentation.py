"""Segmentors, their heads, loss, inference modes, metric, export and mask prediction.

Heads are checked against a PyTorch statement of mmsegmentation's (tests/torch_seg_reference.py)
at feature sizes that are not powers of two (every resize path is exercised); the metric on a
hand-computed confusion matrix and against scikit-learn; inference with a pointwise network,
for which sliding windows must equal the whole image exactly."""
import numpy as np
import mindspore as ms
import pytest
from mindspore import Tensor, nn

from conftest import assert_close
from mindspore_acmix import create_segmentor
from mindspore_acmix.convert import load_torch_state_dict
from mindspore_acmix.deploy import (ExportError, MindIRRunner, export_network, input_shape,
                                    prepare_for_export)
from mindspore_acmix.metrics import SegmentationMetric
from mindspore_acmix.segmentation import (FCNHead, FPN, FPNHead, SegInferencer,
                                          SegmentationLoss, UPerHead, resize_logits)
from mindspore_acmix.segmentation.inference import slide_windows
from mindspore_acmix.tools.predict_mask import palette, predict_mask, write_mask_png

torch = pytest.importorskip("torch")

import torch_seg_reference as ref  # noqa: E402
from torch_reference import perturb_  # noqa: E402

CHS, STRIDES = [8, 12, 16, 20], [4, 8, 16, 32]
# the maps of a 200x264 image at strides 4..32 (ceil, as Swin pads): 66 -> 33 -> 17 -> 9
SIZES = [(50, 66), (25, 33), (13, 17), (7, 9)]
REL = 1e-4


def features(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((2, c, h, w)).astype(np.float32) for c, (h, w) in zip(CHS, SIZES)]


def torch_run(module, xs):
    with torch.no_grad():
        return module([torch.from_numpy(x) for x in xs])


def load(cell, module):
    load_torch_state_dict(cell, {k: v.numpy() for k, v in module.state_dict().items()})
    cell.set_train(False)
    return cell


def test_semantic_fpn_matches_mmseg(pynative):
    """FPN neck (nearest top-down at 4x5 -> 7x9 like sizes) + FPNHead (1/1/2/3 convs, 2x
    upsamplings landing at 52x68 and 56x72, resized to 50x66)."""
    neck_t, head_t = perturb_(ref.FPN(CHS, 16).eval()), perturb_(ref.FPNHead([16] * 4, STRIDES, 8,
                                                                             5).eval(), 1)
    neck, head = load(FPN(CHS, 16), neck_t), load(FPNHead([16] * 4, STRIDES, 5, channels=8),
                                                   head_t)
    xs = features()
    expected = head_t(torch_run(neck_t, xs)).detach().numpy()
    got = head(neck([Tensor(x) for x in xs])).asnumpy()
    assert got.shape == (2, 5, 50, 66)
    assert_close(got, expected, REL, "Semantic FPN")


def test_upernet_and_auxiliary_fcn_head_match_mmseg(pynative):
    """UPerHead (pooling 1, 2, 3, 6 of a 7x9 map, bilinear top-down, concatenation) and the
    auxiliary FCNHead on the third level."""
    head_t = perturb_(ref.UPerHead(CHS, 8, 5).eval())
    aux_t = perturb_(ref.FCNHead(CHS, 6, 5).eval(), 1)
    head, aux = load(UPerHead(CHS, 5, channels=8), head_t), load(FCNHead(CHS, 5, 6), aux_t)
    xs = features(1)
    ours = [Tensor(x) for x in xs]
    assert_close(head(ours).asnumpy(), torch_run(head_t, xs).numpy(), REL, "UPerHead")
    assert_close(aux(ours).asnumpy(), torch_run(aux_t, xs).numpy(), REL, "FCNHead")


@pytest.fixture(scope="module")
def tiny_segmentor():
    """Semantic FPN on acmix_resnet_tiny (strides 1-8), one input channel, narrow heads."""
    ms.set_seed(0)
    net = create_segmentor("acmix_resnet_tiny", head="semantic_fpn", num_classes=4, aux_head=True,
                           head_channels=8, neck_channels=8, aux_channels=8, in_chans=1)
    rng = np.random.default_rng(0)
    for _, cell in net.cells_and_names():  # trained-like BatchNorm statistics
        if isinstance(cell, nn.BatchNorm2d):
            c = cell.gamma.shape[0]
            cell.moving_mean.set_data(Tensor(rng.normal(0, 0.1, c).astype(np.float32)))
            cell.moving_variance.set_data(Tensor(rng.uniform(0.5, 2, c).astype(np.float32)))
    return net


def test_segmentor_outputs_and_parameter_names(tiny_segmentor, pynative):
    net = tiny_segmentor
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 20, 28)).astype(np.float32))
    net.set_train(True)
    logits, aux = net(x)
    assert logits.shape == aux.shape == (2, 4, 20, 28)
    net.set_train(False)
    assert net(x).shape == (2, 4, 20, 28)  # inference: no auxiliary output
    prefixes = {p.name.split(".")[0] for p in net.get_parameters()}
    assert prefixes == {"backbone", "neck", "decode_head", "auxiliary_head"}
    no_decay = net.no_weight_decay()
    assert "decode_head.conv_seg.bias" in no_decay and "neck.fpn_convs.0.conv.bias" in no_decay
    assert "decode_head.conv_seg.weight" not in no_decay
    assert input_shape(net, 3, 24, 40) == (3, 1, 24, 40)
    with pytest.raises(ValueError, match="unknown segmentation head 'deeplab'"):
        create_segmentor("resnet_tiny", head="deeplab")


def test_loss_matches_torch_cross_entropy(pynative):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 5, 6)).astype(np.float32) * 3
    aux = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 5, 6)).astype(np.int32)
    labels[0, :2] = 255

    def ce(x, reduce_valid=False, weight=None):
        per_pixel = torch.nn.functional.cross_entropy(
            torch.from_numpy(x), torch.from_numpy(labels).long(), ignore_index=255,
            reduction="none", weight=None if weight is None else torch.tensor(weight))
        return float(per_pixel.sum() / ((labels != 255).sum() if reduce_valid else labels.size))

    y = Tensor(labels)
    got = SegmentationLoss()(Tensor(logits), y).asnumpy()
    assert got == pytest.approx(ce(logits), rel=1e-5)  # mmseg's mean over every pixel
    got = SegmentationLoss(avg_non_ignore=True)((Tensor(logits), Tensor(aux)), y).asnumpy()
    assert got == pytest.approx(ce(logits, True) + 0.4 * ce(aux, True), rel=1e-5)
    half = SegmentationLoss()(Tensor(logits.astype(np.float16)), y).asnumpy()
    assert half.dtype == np.float32 and half == pytest.approx(ce(logits), rel=1e-2)
    # mmseg's class_weight: each pixel's loss times its class's weight, still the mean
    # over every pixel (torch's reduction="mean" would divide by the weights' sum instead)
    weight = [0.5, 2.0, 1.0, 4.0]
    got = SegmentationLoss(class_weight=weight)(Tensor(logits), y).asnumpy()
    assert got == pytest.approx(ce(logits, weight=weight), rel=1e-5)
    assert abs(got - ce(logits)) > 0.1
    with pytest.raises(ValueError, match="class_weight must be non-negative"):
        SegmentationLoss(class_weight=[1.0, -1.0])


def test_metric_on_a_hand_computed_confusion_matrix():
    """Class 3 appears only where the label is ignored (absent: NaN, out of the means);
    class 4 is predicted but never labelled (IoU 0, Acc NaN)."""
    metric = SegmentationMetric(5, ignore_index=255)
    metric.update(np.array([[0, 1, 1], [1, 0, 3]]), np.array([[0, 0, 1], [1, 2, 255]]))
    metric.update(np.array([4]), np.array([0]))
    assert metric.confusion.tolist() == [[1, 1, 0, 0, 1], [0, 2, 0, 0, 0], [1, 0, 0, 0, 0],
                                         [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    r = metric.compute()
    assert r["IoU"][:3] == pytest.approx([1 / 4, 2 / 3, 0]) and r["IoU"][4] == 0
    assert np.isnan(r["IoU"][3]) and np.isnan(r["Acc"][3]) and np.isnan(r["Acc"][4])
    assert r["Acc"][:3] == pytest.approx([1 / 3, 1, 0])
    assert r["mIoU"] == pytest.approx(11 / 48) and r["mAcc"] == pytest.approx(4 / 9)
    assert r["aAcc"] == pytest.approx(3 / 6)
    other = SegmentationMetric(5).merge(metric.confusion).merge(metric)  # two ranks
    assert other.compute()["mIoU"] == pytest.approx(11 / 48)
    assert other.confusion.sum() == 2 * metric.confusion.sum()
    with pytest.raises(ValueError, match="label holds class 7, outside"):
        metric.update(np.array([0]), np.array([7]))


def test_metric_agrees_with_scikit_learn_over_a_whole_set():
    """Pooled over images (not a mean of per-image IoUs), ignored pixels left out."""
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    metric, preds, labels = SegmentationMetric(6, ignore_index=255), [], []
    for size in ((7, 9), (4, 13), (10, 3)):
        label = rng.integers(0, 5, size)  # class 5 never labelled
        label[rng.random(size) < 0.2] = 255
        pred = np.where(rng.random(size) < 0.6, label, rng.integers(0, 6, size)) % 256
        pred[pred == 255] = 5
        metric.update(pred, label)
        keep = label != 255
        preds.append(pred[keep])
        labels.append(label[keep])
    y, p = np.concatenate(labels), np.concatenate(preds)
    iou = metrics.jaccard_score(y, p, labels=list(range(6)), average=None, zero_division=0)
    r = metric.compute()
    assert r["IoU"] == pytest.approx(list(iou))
    assert r["mIoU"] == pytest.approx(iou.mean())
    assert r["aAcc"] == pytest.approx(metrics.accuracy_score(y, p))
    assert r["Acc"][:5] == pytest.approx(list(metrics.recall_score(y, p, labels=list(range(5)),
                                                                   average=None)))
    assert np.isnan(r["Acc"][5])


def test_resize_logits_matches_torch_bilinear():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 10)).astype(np.float32)
    for size in ((19, 23), (4, 5), (7, 31)):
        expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=size,
                                                   mode="bilinear", align_corners=False).numpy()
        assert_close(resize_logits(x, size), expected, 1e-5, f"resize to {size}")


class Pointwise(nn.Cell):
    """A per-pixel network: any window of its output is the output of that window."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, has_bias=True)

    def construct(self, x):
        return self.conv(x)


def test_sliding_windows_average_to_the_whole_image(pynative):
    """mmseg's grid at 512/341 on an ADE20K-like 512x683 image, then a pointwise net: slide
    (overlaps counted 1-4 times, an image smaller than the crop padded) == whole; the flip
    average of a pointwise net == no flip."""
    assert slide_windows(512, 683, (512, 512), (341, 341)) == [(0, 512, 0, 512),
                                                               (0, 512, 171, 683)]
    net = Pointwise()
    x = np.random.default_rng(0).standard_normal((2, 3, 23, 30)).astype(np.float32)
    whole = SegInferencer(net, "whole")(x)
    slide = SegInferencer(net, "slide", crop=(10, 12), stride=(6, 7))(x)
    assert_close(slide, whole, 1e-6, "slide vs whole")
    assert_close(SegInferencer(net, "slide", crop=32, stride=16, flip=True)(x), whole, 1e-6,
                 "padded single window with flip")
    assert whole.shape == (2, 4, 23, 30)
    assert_close(whole.sum(1), np.ones((2, 23, 30)), 1e-6, "probabilities")
    assert SegInferencer(net, "whole")(x, out_size=(46, 15)).shape == (2, 4, 46, 15)


def test_one_crop_covering_the_image_is_whole_image_inference(tiny_segmentor, pynative):
    x = np.random.default_rng(1).standard_normal((1, 1, 32, 32)).astype(np.float32)
    whole = SegInferencer(tiny_segmentor, "whole")(x)
    slide = SegInferencer(tiny_segmentor, "slide", crop=32, stride=21)(x)
    assert_close(slide, whole, 1e-6, "one window")
    assert not np.allclose(whole, whole.mean(axis=(2, 3), keepdims=True))  # not a constant


def test_predicted_mask_png_holds_the_class_map(tiny_segmentor, tmp_path, pynative):
    from PIL import Image

    colours = palette(256)
    assert len({tuple(c) for c in colours}) == 256 and colours[0].tolist() == [0, 0, 0]
    image = np.random.default_rng(2).integers(0, 255, (21, 37, 3)).astype(np.uint8)
    cfg = dict(test_mode="whole", crop_size=[32, 32], test_stride=[21, 21], test_flip=False,
               num_classes=4, scale=[64, 32], mean=[100.0] * 3, std=[60.0] * 3)
    gray = tiny_segmentor  # one input channel: feed the image's mean as a grey image
    mask = predict_mask(_GreyInput(gray), image, cfg)
    assert mask.shape == (21, 37) and 0 <= mask.min() and mask.max() < 4
    path = write_mask_png(mask, str(tmp_path / "mask.png"), 4)
    with Image.open(path) as png:
        assert png.mode == "P"
        assert np.array_equal(np.asarray(png), mask)
        assert png.getpalette()[:12] == colours[:4].ravel().tolist()


class _GreyInput(nn.Cell):
    """An RGB front for the one-channel test segmentor."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.num_classes = net.num_classes

    def construct(self, x):
        return self.net(x.mean(axis=1, keep_dims=True))


@pytest.mark.slow
def test_segmentor_exports_to_mindir_at_a_non_square_size(tiny_segmentor, tmp_path, monkeypatch):
    """One input channel, 2 x 24 x 40, the auxiliary head left out; the MindIR's logits equal
    the Python model's; a size below a backbone's minimum is one ExportError line."""
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(3).standard_normal((2, 1, 24, 40)).astype(np.float32)
    tiny_segmentor.set_train(False)
    expected = tiny_segmentor(Tensor(x)).asnumpy()
    net = prepare_for_export(tiny_segmentor)
    shape = input_shape(net, 2, 24, 40)
    path = export_network(net, "MINDIR", shape, str(tmp_path / "seg"))
    got = MindIRRunner(path)(x)
    assert got.shape == (2, 4, 24, 40)
    assert_close(got, expected, 1e-5, "segmentor MindIR")
    pvt = create_segmentor("pvt_tiny", num_classes=3, head_channels=8, neck_channels=8,
                           embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 2, 4),
                           mlp_ratios=(2, 2, 2, 2), depths=(1, 1, 1, 1))
    with pytest.raises(ExportError, match=r"cannot run on a \(1, 3, 16, 48\) input: .*at least "
                                          "32x32"):
        export_network(prepare_for_export(pvt), "MINDIR", (1, 3, 16, 48), str(tmp_path / "p"))
    # nothing half-written (MindSpore's own rank_0/ of the failed compile is export.py's
    # scratch directory's business)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("p.")]


# tiny members of the other families (their dense backbones: tests/test_dense_backbones.py)
FAMILIES = [
    ("swin_acmix_tiny", "upernet", dict(embed_dim=12, depths=(2, 2, 2, 2),
                                        num_heads=(3, 3, 3, 3), window_size=7)),
    ("pvt_acmix_tiny", "semantic_fpn", dict(embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 2, 4),
                                            mlp_ratios=(2, 2, 2, 2), depths=(1, 1, 1, 1))),
    ("san_acmix10", "semantic_fpn", dict(base_planes=16, share_planes=4)),
]


@pytest.mark.parametrize("backbone,head,kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_segments_non_square_images(backbone, head, kwargs, pynative):
    """130x150 (SAN's minimum is 128): logits at the input size, and the auxiliary head's."""
    net = create_segmentor(backbone, head=head, num_classes=3, head_channels=8, aux_head=True,
                           neck_channels=8 if head == "semantic_fpn" else None, aux_channels=8,
                           **kwargs)
    net.set_train(True)
    x = np.random.default_rng(0).standard_normal((1, 3, 130, 150)).astype(np.float32)
    outs = [o.asnumpy() for o in net(Tensor(x))]
    assert [o.shape for o in outs] == [(1, 3, 130, 150)] * 2
    assert all(np.isfinite(o).all() and o.std() > 0 for o in outs)
