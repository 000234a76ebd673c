"""Stage 4 of the Ascend 310 flow: top-1 / top-5 from result_Files/<name>_0.bin and label.json,
or a detector's COCO AP from its raw outputs (label.json written by preprocess.py for a
detection config: decode and NMS as evaluation does, mindspore_acmix/deploy_detection.py).

    python postprocess.py --result-path result_Files --label-path preprocess_Result/label.json

(--result_path and --label_path, the model zoo's spellings, are accepted too.)

The last line of standard output is a JSON object with top1, top5, loss and num_samples,
as eval.py prints it (a detector's: AP, AP50, AP75, APs, APm, APl, num_samples,
num_detections).
"""
import argparse
import json
import sys

from mindspore_acmix import cli
from mindspore_acmix.deploy import read_labels, read_results
from mindspore_acmix.deploy_detection import is_detection_labels, score
from mindspore_acmix.engine.evaluate import batch_metrics


class PostprocessError(ValueError):
    """Result or label files that cannot be scored."""


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--result-path", "--result_path", default="result_Files")
    parser.add_argument("--label-path", "--label_path", default="preprocess_Result/label.json")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    try:
        with open(args.label_path) as fh:
            raw = json.load(fh)
        if is_detection_labels(raw):
            metrics = score(args.result_path, raw)
            print(f"AP {metrics['AP']:.4f}, AP50 {metrics['AP50']:.4f} on "
                  f"{metrics['num_samples']} images", file=sys.stderr)
            print(json.dumps(metrics), flush=True)
            return 0
        labels = read_labels(args.label_path)
        logits, targets = read_results(args.result_path, labels)
    except (OSError, ValueError) as exc:
        raise PostprocessError(str(exc)) from None
    hits1, hits5, loss, n = batch_metrics(logits.astype("float64"), targets)
    metrics = {"top1": hits1 / n, "top5": hits5 / n, "loss": loss / n, "num_samples": int(n)}
    print(f"top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f} on {int(n)} images",
          file=sys.stderr)
    print(json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, extra_errors=(PostprocessError,)))
