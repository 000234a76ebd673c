"""Stage 1 of the Ascend 310 flow (scripts/run_infer_310.sh): labels and preprocessed inputs.

    python preprocess.py --config C [--data-path VAL_DIR] [--output-path preprocess_Result]

A detector's config (task: detection) takes the bin route only: VAL_DIR is then a COCO-layout
root (annotations/instances_<val_split>.json, <val_split>/; default the config's data), and
the files are those of mindspore_acmix/deploy_detection.py. A classifier's:

VAL_DIR holds <class>/<image> (default: the config's dataset root/val). Writes
  <out>/label.json         {"<class>_<stem>": class index} (sorted class folders, as eval.py)
  <out>/infer_args.txt     the JPEG route's preprocessing flags for the inference program
  <out>/img_data/*.bin     the bin route's inputs: float32 (1, 3, S, S), eval.py's transforms
                           (skipped with --labels-only)
"""
import os
import sys

from mindspore_acmix.startup import before_mindspore

before_mindspore(sys.argv)  # log level and signal handling, before MindSpore is imported

import mindspore.dataset.transforms as T  # noqa: E402

from mindspore_acmix import cli  # noqa: E402
from mindspore_acmix.data.image_check import (IMAGE_EXTENSIONS, DataError,  # noqa: E402
                                              read_image_file)
from mindspore_acmix.data.pipeline import (dataset_root, eval_transforms,  # noqa: E402
                                           split_classes)
from mindspore_acmix.deploy import (ARGS_FILE, IMAGE_DIR, infer_args, list_images,  # noqa: E402
                                    write_bin, write_labels)


def main(argv):
    parser = cli.parser("Write label.json, the JPEG route's flags and the bin route's inputs.")
    cli.add_config_arguments(parser)
    parser.add_argument("--data-path", help="folder of <class>/<image> (default: the config's "
                        "validation split)")
    parser.add_argument("--output-path", default="preprocess_Result")
    parser.add_argument("--labels-only", action="store_true",
                        help="write label.json and infer_args.txt but no .bin inputs")
    args = parser.parse_args(argv)
    cfg = cli.resolve_config(args, {})
    if cfg["task"] == "detection":
        return preprocess_detection(cfg, args)
    root, split = ((os.path.dirname(os.path.abspath(args.data_path)),
                    os.path.basename(os.path.abspath(args.data_path))) if args.data_path
                   else (dataset_root(cfg), "val"))
    classes = split_classes(root, split)
    if len(classes) != cfg["num_classes"]:
        raise DataError(f"{root}/{split} has {len(classes)} class folders but num_classes is "
                        f"{cfg['num_classes']} in {args.config or cli.DEFAULT_CONFIG}: give "
                        "the model's training config (run_infer_310.sh: CONFIG=...; a run of "
                        "train.py saved its own as OUTPUT_DIR/config.yaml)")
    items = list_images(os.path.join(root, split), classes, IMAGE_EXTENSIONS)
    os.makedirs(args.output_path, exist_ok=True)
    write_labels(args.output_path, items)
    with open(os.path.join(args.output_path, ARGS_FILE), "w") as fh:
        fh.write(infer_args(cfg) + "\n")
    if not args.labels_only:
        image_dir = os.path.join(args.output_path, IMAGE_DIR)
        os.makedirs(image_dir, exist_ok=True)
        transform = T.Compose(eval_transforms(cfg["eval_resize"], cfg["image_size"], cfg["mean"],
                                                cfg["std"], cfg["interpolation"]))
        for name, path, _ in items:
            image = transform(read_image_file(path))
            write_bin(os.path.join(image_dir, name + ".bin"), image[None])
    print(f"{len(items)} images of {len(classes)} classes -> {args.output_path}", flush=True)
    return 0


def preprocess_detection(cfg, args):
    from mindspore_acmix.deploy_detection import write_inputs
    from mindspore_acmix.engine.tasks import build_detector

    if args.labels_only:
        raise DataError("a detector takes the bin route (run_infer_310.sh ... bin): the "
                        "program's JPEG preprocessing is a classifier's resize and crop")
    if args.data_path:
        cfg = dict(cfg, dataset="coco", data_dir=os.path.abspath(args.data_path))
    detector = build_detector(cfg, pretrained=False)
    count = write_inputs(cfg, detector, args.output_path,
                         os.path.join(args.output_path, IMAGE_DIR))
    print(f"{count} images -> {args.output_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
