"""Train a registered model from a YAML recipe.

    python train.py                       # ACmix-ResNet-tiny on the built-in digits data (CPU)
    python train.py --config configs/imagenet/acmix_resnet50.yaml --set data_dir=/data/imagenet
    python train.py --config configs/digits/seg_acmix_resnet_tiny.yaml   # segmentation demo
    python train.py --config configs/digits/det_acmix_resnet_tiny.yaml   # detection demo
"""
import os
import sys

from mindspore_acmix.startup import before_mindspore

before_mindspore(sys.argv)  # log level and signal handling, before MindSpore is imported

from mindspore_acmix import cli  # noqa: E402
from mindspore_acmix.engine.errors import TrainingError  # noqa: E402
from mindspore_acmix.engine.trainer import Trainer  # noqa: E402
from mindspore_acmix.runtime import setup_runtime, working_directory  # noqa: E402

FLAGS = {"epochs": "epochs", "batch_size": "batch_size", "output_dir": "output_dir",
         "seed": "seed", "amp_level": "amp_level"}


def main(argv):
    parser = cli.parser("Train an ACmix (or baseline) model.")
    cli.add_config_arguments(parser)
    parser.add_argument("--epochs", type=int, help="total epochs of the run")
    parser.add_argument("--batch-size", type=int, help="images per device per step")
    parser.add_argument("--output-dir", help="checkpoints, metrics.jsonl, curves.png, config.yaml")
    parser.add_argument("--resume", help="'auto' (newest valid checkpoint in the output dir) "
                        "or a checkpoint path; the run finishes its planned epochs")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--amp-level", metavar="auto|O0|O2",
                        help="mixed precision (see mindspore_acmix/engine/amp.py)")
    parser.add_argument("--stop-after", type=int, metavar="N",
                        help="stop after N epochs in this invocation (resume later)")
    args = parser.parse_args(argv)
    resume = args.resume if args.resume in (None, "auto") else os.path.abspath(args.resume)
    if resume:
        cfg, note = cli.resolve_resume_config(args, FLAGS, resume)
        if note:
            print(note, flush=True)
    else:
        cfg = cli.resolve_config(args, FLAGS)
    with working_directory(os.path.join(cfg["output_dir"], "runtime")):
        device = setup_runtime(cfg["device"])
        trainer = Trainer(cfg, device, resume=resume, stop_after=args.stop_after)
        best = trainer.fit()
    print(f"best val {trainer.task.best_label} {best:.4f}; outputs in {cfg['output_dir']}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, extra_errors=(TrainingError,)))
