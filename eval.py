"""Evaluate a checkpoint on the validation split; the last line of standard output is a JSON
object: top1, top5, loss and num_samples (classification); mIoU, mAcc, aAcc, per-class IoU
and Acc, num_samples (segmentation, after a per-class IoU table on standard error); COCO AP,
AP50, AP75, APs, APm, APl and num_samples (detection).

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
from mindspore_acmix.engine.tasks import make_task  # noqa: E402
from mindspore_acmix.layers import describe_implementations  # noqa: E402
from mindspore_acmix.runtime import setup_runtime, working_directory  # noqa: E402


def main(argv):
    parser = cli.parser("Evaluate a checkpoint on the validation set: top-1, top-5 and loss "
                        "(classification), mIoU, mAcc, aAcc and per-class IoU (segmentation), COCO AP "
                        "(detection).")
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
        task = make_task(cfg, log=lambda line: print(line, file=sys.stderr))
        net = load_network_checkpoint(task.build_network(for_training=False), checkpoint,
                                      cfg["model"], ema=args.ema)
        print(f"evaluating {cfg['model']} ({describe_implementations(net)})", file=sys.stderr)
        split = task.split("val")
        for line in split.warnings():
            print(line, file=sys.stderr)
        metrics = task.evaluator(net, split).run()
    if metrics["skipped_images"]:
        print(f"skipped {metrics['skipped_images']} unreadable image(s) (python -m "
              "mindspore_acmix.data.image_check FOLDER lists them)", file=sys.stderr)
    lines, result = task.eval_report(metrics, checkpoint)
    print("\n".join(lines), file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
