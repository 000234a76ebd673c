"""The Python twin of ascend310_infer (the C++ Ascend 310 program): the same MindIR, run with
nn.GraphCell on the local backend, reading and writing exactly the same files.

    python infer_mindir.py --mindir-path=net.mindir --input-path=preprocess_Result/img_data \
        --input-format=bin
    python infer_mindir.py --mindir-path=net.mindir --input-path=VAL_DIR --input-format=jpeg \
        $(cat preprocess_Result/infer_args.txt)

Every flag is also accepted in the C++ program's underscore spelling (--mindir_path, and
infer_args.txt's), so scripts/run_infer_310.sh passes the same flags to either program.

Writes result_Files/<name>_<i>.bin per image and output i (a classifier's float32 logits are
output 0; a detector's raw per-level outputs, mindspore_acmix/deploy_detection.py) and
time_Result/test_perform_static.txt (average latency), like the C++ program.
"""
import argparse
import os
import sys
import time

from mindspore_acmix.startup import before_mindspore

before_mindspore(sys.argv)  # log level and signal handling, before MindSpore is imported

import mindspore.dataset.transforms as T  # noqa: E402
import numpy as np  # noqa: E402

from mindspore_acmix import cli  # noqa: E402
from mindspore_acmix.data.image_check import read_image_file  # noqa: E402
from mindspore_acmix.data.pipeline import eval_transforms  # noqa: E402
from mindspore_acmix.deploy import (RESULT_DIR, TIME_DIR, TIME_FILE, MindIRRunner,  # noqa: E402
                                    bin_inputs, jpeg_inputs, read_bin, write_bin)
from mindspore_acmix.runtime import setup_runtime  # noqa: E402


class InferError(ValueError):
    """Inputs the inference program cannot use."""


def numbers(text):
    return [float(v) for v in text.split(",")]


def image_size(text):
    values = [int(float(v)) for v in text.split(",")]
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected S or H,W, got {text!r}")
    return values * (3 - len(values))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # hyphens like every script; the underscore spellings are the C++ program's (see above)
    parser.add_argument("--mindir-path", "--mindir_path", required=True)
    parser.add_argument("--input-path", "--input_path", required=True,
                        help="bin: folder of <name>.bin; jpeg: folder of <class>/<image>")
    parser.add_argument("--input-format", "--input_format", choices=("bin", "jpeg"), default="bin")
    parser.add_argument("--device-id", "--device_id", type=int, default=0,
                        help="accepted for parity with the C++ program; the local backend is used")
    parser.add_argument("--image-size", "--image_size", type=image_size, default=None,
                        help="bin: input H,W or S (default: a square read from the bin size)")
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--mean", type=numbers, default=[123.675, 116.28, 103.53])
    parser.add_argument("--std", type=numbers, default=[58.395, 57.12, 57.375])
    parser.add_argument("--interpolation", default="bilinear")
    parser.add_argument("--result-path", "--result_path", default=RESULT_DIR)
    parser.add_argument("--time-path", "--time_path", default=TIME_DIR)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.mindir_path):
        raise InferError(f"MindIR {args.mindir_path} does not exist")
    if not os.path.isdir(args.input_path):
        raise InferError(f"input folder {args.input_path} does not exist")
    setup_runtime("CPU")
    if args.input_format == "bin":
        inputs = bin_inputs(args.input_path)
    else:
        inputs = jpeg_inputs(args.input_path)
        transform = T.Compose(eval_transforms(args.resize, args.crop, args.mean, args.std,
                                              args.interpolation))
    if not inputs:
        raise InferError(f"no {args.input_format} inputs in {args.input_path}")
    runner = MindIRRunner(args.mindir_path)
    os.makedirs(args.result_path, exist_ok=True)
    os.makedirs(args.time_path, exist_ok=True)
    total_ms = 0.0
    for name, path in inputs:
        if args.input_format == "bin":
            values = np.fromfile(path, np.float32).size
            size = args.image_size or [int(round((values / 3) ** 0.5))] * 2
            image = read_bin(path, (1, 3) + tuple(size))
        else:
            image = transform(read_image_file(path))[None]
        start = time.perf_counter()
        outputs = runner.outputs(image)
        total_ms += (time.perf_counter() - start) * 1000.0
        for i, output in enumerate(outputs):  # as the C++ program: <name>_<i>.bin
            write_bin(os.path.join(args.result_path, f"{name}_{i}.bin"), output)
    average = total_ms / len(inputs)
    with open(os.path.join(args.time_path, TIME_FILE), "w") as fh:
        fh.write(f"NN inference cost average time: {average:.4f} ms of infer_count "
                 f"{len(inputs)}\n")
    print(f"{len(inputs)} images, average {average:.3f} ms -> {args.result_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, extra_errors=(InferError,)))
