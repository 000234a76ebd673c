"""Draw the boxes a trained detector (its checkpoint, or its exported MindIR) predicts for one
image: the same preprocessing as evaluation, the raw per-level outputs decoded by the shared
postprocess (detection.postprocess). Writes a PNG and prints the detections as JSON.

    python -m mindspore_acmix.tools.predict_boxes --config outputs/RUN/config.yaml \
        --checkpoint outputs/RUN/best.ckpt --image IMG.png --output boxes.png
    python -m mindspore_acmix.tools.predict_boxes --config C --mindir M.mindir --image IMG.png
"""
import json
import os
import sys

from mindspore_acmix.startup import before_mindspore


def predict(forward, image, cfg, anchors, infer_cfg):
    """(padded normalised image, img_shape, detections on the original image) of one RGB
    uint8 image; `forward` maps a (1, 3, H, W) array to the flat raw outputs."""
    import numpy as np

    from ..data.detection import transform
    from ..detection import postprocess, split_outputs

    padded, _, img_shape, scale = transform(image, np.zeros((0, 4), np.float32), cfg)
    cls, reg = split_outputs(forward(padded[None]))
    factor = np.array([scale[0], scale[1], scale[0], scale[1]])
    level_anchors = anchors.level_anchors(tuple(cfg["pad_size"]))
    dets = postprocess([c[0] for c in cls], [r[0] for r in reg], level_anchors, img_shape,
                       factor, infer_cfg)
    return padded, img_shape, dets, factor


def main(argv):
    before_mindspore(argv)
    from .. import cli
    from ..checkpoint import load_network_checkpoint
    from ..data.detection import read_image
    from ..deploy import MindIRRunner, prepare_for_export
    from ..engine.det_figures import write_detections
    from ..engine.tasks import make_task
    from ..runtime import setup_runtime, working_directory

    parser = cli.parser("Draw the boxes a detector predicts for one image.")
    cli.add_config_arguments(parser)
    parser.add_argument("--checkpoint", help="the detector's .ckpt (default: best.ckpt in the "
                        "config's output_dir)")
    parser.add_argument("--mindir", help="run this exported MindIR instead of the checkpoint")
    parser.add_argument("--image", required=True, help="an RGB image file")
    parser.add_argument("--output", default="boxes.png", help="the PNG to write")
    parser.add_argument("--min-score", type=float, default=0.3, help="draw boxes from this score")
    args = parser.parse_args(argv)
    cfg = cli.resolve_config(args, {}, cli.config_beside(args.checkpoint))
    if cfg["task"] != "detection":
        raise cli.config_lib.ConfigError(f"{args.config}: task {cfg['task']} is not detection")
    image_path, output = os.path.abspath(args.image), os.path.abspath(args.output)
    mindir = args.mindir and os.path.abspath(args.mindir)
    checkpoint = os.path.abspath(args.checkpoint or os.path.join(cfg["output_dir"], "best.ckpt"))
    image = read_image(image_path)
    with working_directory():
        setup_runtime(cfg["device"])
        task = make_task(cfg)
        net = task.build_network(for_training=False)  # anchors and inference settings
        if mindir:
            runner = MindIRRunner(mindir)
            forward = runner.outputs
        else:
            cell = task.exportable(prepare_for_export(
                load_network_checkpoint(net, checkpoint, cfg["model"])),
                (1, 3) + tuple(cfg["pad_size"]))[0]

            def forward(x):
                from mindspore import Tensor
                return [o.asnumpy() for o in cell(Tensor(x))]
        padded, img_shape, (boxes, scores, labels), factor = predict(
            forward, image, cfg, net.anchors, net.test_cfg)
    names = task.class_names
    write_detections([(padded, img_shape, boxes * factor, scores, labels,
                       boxes[:0], labels[:0])], names, cfg, os.path.basename(image_path),
                     os.path.dirname(output), args.min_score, os.path.basename(output))
    print(json.dumps([{"box": [round(float(v), 2) for v in b], "score": round(float(s), 4),
                       "class": names[int(c)]} for b, s, c in zip(boxes, scores, labels)]))
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from mindspore_acmix import cli as _cli
    sys.exit(_cli.run(main))
