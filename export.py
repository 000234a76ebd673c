"""Export a checkpoint for inference: MindIR (default), ONNX, or AIR (Ascend only).

    python export.py --config configs/digits/acmix_resnet_tiny.yaml \
        --checkpoint outputs/acmix_resnet_tiny_digits/best.ckpt --output acmix_tiny
    python export.py --config C --checkpoint P --file-format ONNX --batch-size 1 --image-size 224
    python export.py --config configs/ade20k/upernet_swin_acmix_tiny.yaml \
        --checkpoint run/best.ckpt --image-size 512 1024     # height width

The input is (batch, channels, height, width): channels from the model (in_chans), the size
from --image-size (one number: square) or the config (classification: image_size;
segmentation: crop_size). A segmentor is exported in inference mode, without its
auxiliary head: logits (batch, num_classes, height, width).

The network comes from the same builder as train.py and eval.py, in inference mode, in
float32 (also after AMP training), with the graph-operator formulation of ACmix (see
mindspore_acmix.deploy): the file runs on any backend and holds the trained numbers.
"""
import os
import sys

from mindspore_acmix.startup import before_mindspore

before_mindspore(sys.argv)  # log level and signal handling, before MindSpore is imported

from mindspore_acmix import cli  # noqa: E402
from mindspore_acmix.checkpoint import load_network_checkpoint  # noqa: E402
from mindspore_acmix.deploy import (ExportError, check_format, export_network,  # noqa: E402
                                    input_shape, prepare_for_export)
from mindspore_acmix.engine.tasks import make_task  # noqa: E402
from mindspore_acmix.layers import describe_implementations  # noqa: E402
from mindspore_acmix.runtime import setup_runtime, working_directory  # noqa: E402


def export_size(image_size, cfg):
    """(height, width) from --image-size (one or two numbers) or the config."""
    if image_size is None:
        size = {"segmentation": cfg.get("crop_size"), "detection": cfg.get("pad_size")}.get(
            cfg["task"], [cfg.get("image_size")])
    else:
        size = image_size
    if len(size) not in (1, 2):
        raise ExportError(f"--image-size takes SIZE or HEIGHT WIDTH, got {len(size)} numbers")
    return int(size[0]), int(size[-1])


def main(argv):
    parser = cli.parser("Export a trained checkpoint to MindIR, ONNX or AIR.")
    cli.add_config_arguments(parser)
    parser.add_argument("--checkpoint", required=True, help="the .ckpt to export")
    parser.add_argument("--file-format", default="MINDIR", help="MINDIR, ONNX or AIR (Ascend)")
    parser.add_argument("--batch-size", type=int, default=1, help="static batch of the input")
    parser.add_argument("--image-size", type=int, nargs="+", metavar="SIZE",
                        help="input size: SIZE (square) or HEIGHT WIDTH (default: the "
                        "config's image_size, or crop_size for segmentation)")
    parser.add_argument("--output", help="file name without extension (default: the model name)")
    args = parser.parse_args(argv)
    cfg = cli.resolve_config(args, {}, cli.config_beside(args.checkpoint))
    # absolute before entering the scratch working directory
    output = os.path.abspath(args.output or cfg["model"])
    checkpoint = os.path.abspath(args.checkpoint)
    with working_directory():
        device = setup_runtime(cfg["device"])
        fmt = check_format(args.file_format, device)
        height, width = export_size(args.image_size, cfg)
        task = make_task(cfg)
        net = load_network_checkpoint(task.build_network(for_training=False), checkpoint,
                                      cfg["model"])
        shape = input_shape(net, args.batch_size, height, width)
        cell, outputs = task.exportable(prepare_for_export(net), shape)
        path = export_network(cell, fmt, shape, output)
    print(f"wrote {path}: {cfg['model']} ({describe_implementations(net)}), input "
          f"{shape} float32, output {outputs}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, extra_errors=(ExportError,)))
