"""Inference modes of a segmentor (mmsegmentation's EncoderDecoder.inference): the whole
image at once or sliding windows, optionally averaged with the horizontal flip, scores
resized back to the label's size. Static shapes for graph mode: whole mode pads the image
(bottom/right, zeros) to a multiple of `size_divisor` and crops the logits back; slide
mode runs one crop shape (an image smaller than a crop is padded to it likewise)."""
import numpy as np
import mindspore as ms
from mindspore import Tensor

from ..checks import ceil_div, int_pair
from ..runtime import compiled

MODES = ("whole", "slide")


def _axis_weights(in_size, out_size):
    """Source indices and weights of a bilinear resize along one axis, align_corners=False
    (half-pixel centres, sources below 0 clamped: torch's F.interpolate without antialias)."""
    src = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5,
                     0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = (src - low).astype(np.float32)
    return low, high, frac


def resize_logits(scores, size):
    """Bilinear resize (align_corners=False) of (B, K, H, W) NumPy scores to size (h, w), as
    mmseg resizes logits to the original image before the argmax."""
    scores = np.asarray(scores, np.float32)
    h, w = int(size[0]), int(size[1])
    if scores.shape[2:] == (h, w):
        return scores
    low, high, frac = _axis_weights(scores.shape[2], h)
    frac = frac[:, None]
    scores = scores[:, :, low] * (1 - frac) + scores[:, :, high] * frac
    low, high, frac = _axis_weights(scores.shape[3], w)
    return scores[..., low] * (1 - frac) + scores[..., high] * frac


def softmax(logits, axis=1):
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def _pad_to(image, height, width):
    b, c, h, w = image.shape
    if (h, w) == (height, width):
        return image
    out = np.zeros((b, c, height, width), image.dtype)
    out[:, :, :h, :w] = image
    return out


def slide_windows(height, width, crop, stride):
    """[(y1, y2, x1, x2)] of mmseg's slide_inference: a grid at `stride`, the last window of
    each row and column moved back inside the image; windows are clipped to the image."""
    (ch, cw), (sh, sw) = crop, stride
    rows = max(height - ch + sh - 1, 0) // sh + 1
    cols = max(width - cw + sw - 1, 0) // sw + 1
    windows = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * sh + ch, height), min(c * sw + cw, width)
            windows.append((max(y2 - ch, 0), y2, max(x2 - cw, 0), x2))
    return windows


class SegInferencer:
    """`inferencer(images)` -> class probabilities (B, K, H, W), NumPy float32, at the
    input size (or at `out_size`: logits resized there before the softmax, as mmseg does
    with rescale=True), for normalised NCHW float images.

    mode "whole": one pass on the image padded to a multiple of `size_divisor`; "slide":
    windows of `crop` every `stride`, overlapping logits averaged. flip: the probabilities
    averaged with those of the horizontally flipped image (mmseg's aug_test)."""

    def __init__(self, net, mode="whole", crop=(512, 512), stride=(341, 341), flip=False,
                 num_classes=None, size_divisor=32):
        if mode not in MODES:
            raise ValueError(f"unknown inference mode {mode!r}: choose one of {', '.join(MODES)}")
        if ms.get_context("mode") == ms.GRAPH_MODE:
            compiled(net)  # the run's jit_level, as every other evaluator's network
        self.net = net
        self.mode = mode
        self.crop = int_pair("crop", crop)
        self.stride = int_pair("stride", stride)
        if mode == "slide" and any(s > c for s, c in zip(self.stride, self.crop)):
            raise ValueError(f"stride {self.stride} larger than the crop {self.crop} would "
                             "leave pixels no window covers")
        self.size_divisor = int_pair("size_divisor", size_divisor)[0]
        self.flip = bool(flip)
        self.num_classes = num_classes if num_classes is not None \
            else getattr(net, "num_classes", None)

    @classmethod
    def from_config(cls, net, cfg):
        """The inferencer of a segmentation config: test_mode, crop_size windows test_stride
        apart, test_flip, num_classes."""
        return cls(net, mode=cfg["test_mode"], crop=tuple(cfg["crop_size"]),
                   stride=tuple(cfg["test_stride"]), flip=cfg["test_flip"],
                   num_classes=cfg["num_classes"])

    def _run(self, image):
        if self.net.training:
            self.net.set_train(False)
        out = self.net(Tensor(np.ascontiguousarray(image, np.float32)))
        logits = out.asnumpy() if isinstance(out, ms.Tensor) else out[0].asnumpy()
        if self.num_classes is not None and logits.shape[1] != self.num_classes:
            raise ValueError(f"the network returns {logits.shape[1]} classes, expected "
                             f"{self.num_classes}")
        return logits.astype(np.float32)

    def whole(self, image):
        """Logits of the image padded to a multiple of size_divisor, cropped back."""
        h, w = image.shape[2:]
        d = self.size_divisor
        padded = _pad_to(image, ceil_div(h, d) * d, ceil_div(w, d) * d)
        return self._run(padded)[:, :, :h, :w]

    def slide(self, image):
        """Logits averaged over the sliding windows (mmseg's slide_inference)."""
        b, _, h, w = image.shape
        ch, cw = self.crop
        sums, count = None, np.zeros((h, w), np.float32)
        for y1, y2, x1, x2 in slide_windows(h, w, self.crop, self.stride):
            window = _pad_to(image[:, :, y1:y2, x1:x2], ch, cw)
            logits = self._run(window)[:, :, :y2 - y1, :x2 - x1]
            if sums is None:
                sums = np.zeros((b, logits.shape[1], h, w), np.float32)
            sums[:, :, y1:y2, x1:x2] += logits
            count[y1:y2, x1:x2] += 1
        return sums / count

    def logits(self, image):
        image = np.asarray(image, np.float32)
        if image.ndim != 4:
            raise ValueError(f"expected (B, C, H, W) images, got shape {image.shape}")
        return self.whole(image) if self.mode == "whole" else self.slide(image)

    def __call__(self, image, out_size=None):
        image = np.asarray(image, np.float32)
        views = [image, image[..., ::-1]] if self.flip else [image]
        probs = None
        for k, view in enumerate(views):
            logits = self.logits(view)
            if k == 1:
                logits = logits[..., ::-1]
            if out_size is not None:
                logits = resize_logits(logits, out_size)
            p = softmax(logits)
            probs = p if probs is None else probs + p
        return probs / len(views)
