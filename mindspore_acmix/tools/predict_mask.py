"""Predict the segmentation mask of one image and write it as a colour-coded PNG.

    python -m mindspore_acmix.tools.predict_mask --config C --checkpoint P \\
        --image street.jpg --output street_mask.png [--overlay street_overlay.png]

The image goes through the evaluation preprocessing of the config (data.segmentation's
eval_transform: resized to the test scale, normalised) and the config's inference mode
(test_mode whole or slide, test_flip); the class scores are resized back to the image's
size before the argmax. The PNG is a palette image: each pixel holds its class index and
the palette gives every class a distinct colour (PASCAL VOC's bit-interleaved colour map),
so it opens as a colour picture and reads back as the class map.
"""
import os
import sys

from mindspore_acmix.startup import before_mindspore

if __name__ == "__main__":
    before_mindspore(sys.argv)  # log level and signal handling, before MindSpore is imported

import numpy as np  # noqa: E402

from mindspore_acmix import cli  # noqa: E402


class PredictError(ValueError):
    """An image or an output that cannot be used."""


def palette(num_classes=256):
    """(num_classes, 3) uint8 colours: PASCAL VOC's colour map (the bits of the class index
    spread over the high bits of R, G and B), distinct for every index below 256."""
    if not 1 <= num_classes <= 256:
        raise PredictError(f"a palette PNG holds at most 256 classes, got {num_classes}")
    colours = np.zeros((num_classes, 3), np.uint8)
    for index in range(num_classes):
        value, shift = index, 7
        while value:
            for channel in range(3):
                colours[index, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return colours


def write_mask_png(mask, path, num_classes):
    """Write an (H, W) class map as a palette PNG; returns the path."""
    from PIL import Image

    from .. import atomic

    image = Image.fromarray(np.asarray(mask, np.uint8), mode="P")
    image.putpalette(palette(num_classes).ravel().tolist())
    with atomic.writing(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def overlay(image, mask, num_classes, alpha=0.5):
    """The RGB image blended with the mask's colours (uint8)."""
    colours = palette(num_classes)[mask]
    return (image * (1 - alpha) + colours * alpha).round().astype(np.uint8)


def read_image(path):
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise PredictError(f"{path}: unreadable image ({exc})") from None


def predict_mask(net, image, cfg):
    """(H, W) int class map of one RGB uint8 image with the config's preprocessing and
    inference mode, at the image's own size."""
    from ..data.segmentation import eval_transform
    from ..segmentation import SegInferencer

    x = eval_transform(image, cfg)[None]
    return SegInferencer.from_config(net, cfg)(x, out_size=image.shape[:2])[0].argmax(0)


def main(argv):
    parser = cli.parser("Write the colour-coded segmentation mask of an image.")
    cli.add_config_arguments(parser)
    parser.add_argument("--checkpoint", required=True, help="the segmentor's .ckpt")
    parser.add_argument("--image", required=True, help="an RGB image (any size)")
    parser.add_argument("--output", help="mask PNG (default: <image>_mask.png beside it)")
    parser.add_argument("--overlay", help="also write the image blended with the mask here")
    args = parser.parse_args(argv)
    cfg = cli.resolve_config(args, {}, cli.config_beside(args.checkpoint))
    if cfg.get("task") != "segmentation":
        raise PredictError(f"{args.config or 'the config'} is a {cfg.get('task')} config; "
                           "predict_mask needs task: segmentation")
    image = read_image(args.image)
    output = os.path.abspath(args.output or os.path.splitext(args.image)[0] + "_mask.png")
    overlay_path = args.overlay and os.path.abspath(args.overlay)
    checkpoint = os.path.abspath(args.checkpoint)
    from ..checkpoint import load_network_checkpoint
    from ..engine.tasks import make_task
    from ..runtime import setup_runtime, working_directory
    with working_directory():
        setup_runtime(cfg["device"])
        net = load_network_checkpoint(make_task(cfg).build_network(for_training=False),
                                      checkpoint, cfg["model"])
        mask = predict_mask(net, image, cfg)
    write_mask_png(mask, output, cfg["num_classes"])
    if overlay_path:
        from PIL import Image

        Image.fromarray(overlay(image, mask, cfg["num_classes"])).save(overlay_path)
    counts = np.bincount(mask.ravel(), minlength=cfg["num_classes"])
    names = cfg["class_names"] or [str(c) for c in range(cfg["num_classes"])]
    present = ", ".join(f"{names[c]} {counts[c] / mask.size:.1%}"
                        for c in np.argsort(-counts) if counts[c])
    print(f"wrote {output} ({mask.shape[1]}x{mask.shape[0]}, classes: {present})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, extra_errors=(PredictError,)))
