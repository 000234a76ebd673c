"""Evaluate a checkpoint on the validation split; the last line of standard output is a JSON
object with top1, top5, loss and num_samples.

    python eval.py                        # the default run's best checkpoint
    python eval.py --config C --checkpoint P
"""
import json
import os
import sys

from mindspore_acmix.startup import before_mindspore

before_mindspore(sys.argv)  # log level and signal handling, before MindSpore is imported

from mindspore_acmix import cli  # noqa: E402
from mindspore_acmix.checkpoint import load_network_checkpoint  # noqa: E402
from mindspore_acmix.data.pipeline import ImageFolderSplit  # noqa: E402
from mindspore_acmix.engine.build import build_network  # noqa: E402
from mindspore_acmix.engine.evaluate import Evaluator  # noqa: E402
from mindspore_acmix.layers import describe_implementations  # noqa: E402
from mindspore_acmix.runtime import setup_runtime, working_directory  # noqa: E402


def main(argv):
    parser = cli.parser("Evaluate a checkpoint: top-1, top-5 and loss on the validation set.")
    cli.add_config_arguments(parser)
    parser.add_argument("--checkpoint", help="default: best.ckpt in the config's output_dir")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--ema", action="store_true",
                        help="evaluate the EMA weights of a run trained with ema: true")
    args = parser.parse_args(argv)
    # a checkpoint written by train.py has its resolved config beside it
    cfg = cli.resolve_config(args, {"batch_size": "batch_size"},
                             cli.config_beside(args.checkpoint))
    checkpoint = os.path.abspath(args.checkpoint or os.path.join(cfg["output_dir"], "best.ckpt"))
    with working_directory():
        setup_runtime(cfg["device"])
        net = load_network_checkpoint(build_network(cfg), checkpoint, cfg["model"],
                                      ema=args.ema)
        print(f"evaluating {cfg['model']} ({describe_implementations(net)})", file=sys.stderr)
        split = ImageFolderSplit(cfg, "val")
        for line in split.warnings():
            print(line, file=sys.stderr)
        metrics = Evaluator(net, split, world=1).run()
    if metrics["skipped_images"]:
        print(f"skipped {metrics['skipped_images']} unreadable image(s) (python -m "
              "mindspore_acmix.data.image_check FOLDER lists them)", file=sys.stderr)
    print(f"{checkpoint}: top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f}, "
          f"loss {metrics['loss']:.4f} on {metrics['num_samples']} images", file=sys.stderr)
    print(json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
