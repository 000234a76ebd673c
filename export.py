"""Export a checkpoint for inference: MindIR (default), ONNX, or AIR (Ascend only).

    python export.py --config configs/digits/acmix_resnet_tiny.yaml \
        --checkpoint outputs/acmix_resnet_tiny_digits/best.ckpt --output acmix_tiny
    python export.py --config C --checkpoint P --file-format ONNX --batch-size 1 --image-size 224

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
                                    prepare_for_export)
from mindspore_acmix.engine.tasks import make_task  # noqa: E402
from mindspore_acmix.layers import describe_implementations  # noqa: E402
from mindspore_acmix.runtime import setup_runtime, working_directory  # noqa: E402


def main(argv):
    parser = cli.parser("Export a trained checkpoint to MindIR, ONNX or AIR.")
    cli.add_config_arguments(parser)
    parser.add_argument("--checkpoint", required=True, help="the .ckpt to export")
    parser.add_argument("--file-format", default="MINDIR", help="MINDIR, ONNX or AIR (Ascend)")
    parser.add_argument("--batch-size", type=int, default=1, help="static batch of the input")
    parser.add_argument("--image-size", type=int, help="input height and width (default: "
                        "the config's image_size; detection: pad_size, segmentation: crop_size)")
    parser.add_argument("--output", help="file name without extension (default: the model name)")
    args = parser.parse_args(argv)
    cfg = cli.resolve_config(args, {}, cli.config_beside(args.checkpoint))
    # absolute before entering the scratch working directory
    output = os.path.abspath(args.output or cfg["model"])
    checkpoint = os.path.abspath(args.checkpoint)
    with working_directory():
        device = setup_runtime(cfg["device"])
        fmt = check_format(args.file_format, device)
        task = make_task(cfg)
        net = load_network_checkpoint(task.build_network(for_training=False), checkpoint,
                                      cfg["model"])
        cell, size, outputs = task.exportable(prepare_for_export(net))
        if args.image_size is not None:
            size = (args.image_size, args.image_size)
        for name, value in (("--batch-size", args.batch_size), ("--image-size", min(size))):
            if value < 1:
                raise ExportError(f"{name} must be a positive integer, got {value}")
        path = export_network(cell, fmt, args.batch_size, size, output)
    print(f"wrote {path}: {cfg['model']} ({describe_implementations(net)}), input "
          f"({args.batch_size}, 3, {size[0]}, {size[1]}) float32, output {outputs}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, extra_errors=(ExportError,)))
