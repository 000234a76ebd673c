"""Export to MindIR / ONNX / AIR and the file formats of the Ascend 310 inference flow.

Export builds the network with the same builder as train.py and eval.py, loads the
checkpoint strictly and switches it to a portable formulation that computes the same
numbers: the ACmix local attention as blocked batched matmuls (attn_impl "halo" instead of
the CPU-only C++ kernel) and every convolution as the native Conv2D (instead of the per-tap
matmuls used for speed on CPU). The parameters are the same, so nothing about training
changes; the exported graph runs on any backend and translates to ONNX.

The Ascend 310 flow (ascend310_infer/, scripts/run_infer_310.sh) exchanges these files,
which the C++ program and the Python twin (infer_mindir.py) read and write identically:

- `<pre>/img_data/<name>.bin`: one preprocessed image, float32 (1, 3, S, S), no header;
- `<pre>/label.json`: {"<name>": class index}, classes in sorted folder order;
- `<pre>/infer_args.txt`: the JPEG route's preprocessing flags for the inference program;
- `result_Files/<name>_0.bin`: float32 logits (1, num_classes) of one image;
- `time_Result/test_perform_static.txt`: the average latency.

`<name>` is "<class folder>_<file name without extension>", unique across classes.
"""
import glob
import json
import os

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn

from . import atomic
from .layers.placement import make_portable

FORMATS = ("MINDIR", "AIR", "ONNX")
EXTENSIONS = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}
LABEL_FILE = "label.json"
ARGS_FILE = "infer_args.txt"
IMAGE_DIR = "img_data"
RESULT_DIR = "result_Files"
TIME_DIR = "time_Result"
TIME_FILE = "test_perform_static.txt"


class ExportError(ValueError):
    """An export that cannot be done as asked."""


def check_format(file_format, device):
    """The upper-case format name; AIR only on Ascend."""
    fmt = str(file_format).upper()
    if fmt not in FORMATS:
        raise ExportError(f"unknown file format {file_format!r}: choose one of "
                          f"{', '.join(FORMATS)}")
    if fmt == "AIR" and device != "Ascend":
        raise ExportError(f"AIR export needs an Ascend backend (MindSpore writes AIR through "
                          f"the Ascend graph engine); the device here is {device}. Use "
                          "--file-format MINDIR (or ONNX)")
    return fmt


def prepare_for_export(net):
    """Inference mode, float32 everywhere (also after AMP training), portable operators."""
    net.set_train(False)
    net.to_float(ms.float32)
    for param in net.get_parameters():
        if param.dtype != ms.float32:
            param.set_data(param.astype(ms.float32))
    return make_portable(net)


def network_in_chans(net):
    """Input channels of a network built here: a segmentor's backbone's or a registered
    model's (default_cfg's input_size), 3 for anything else."""
    chans = getattr(net, "in_chans", None)
    if chans is None:
        cfg = getattr(net, "default_cfg", None) or {}
        chans = cfg.get("input_size", (3,))[0]
    return int(chans)


def input_shape(net, batch_size, height, width=None):
    """(batch, channels, height, width) of an export input, channels from the network;
    width defaults to height. Every entry must be a positive integer."""
    width = height if width is None else width
    for name, value in (("batch size", batch_size), ("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExportError(f"the export input's {name} must be a positive integer, got "
                              f"{value!r}")
    return (batch_size, network_in_chans(net), height, width)


def _first_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def export_network(net, file_format, shape, output):
    """Write `output` + extension for a static float32 input of `shape` (B, C, H, W, see
    input_shape); returns the path written. A network that cannot run at that shape (a
    size below a backbone's minimum, a classifier built for one size) is an ExportError
    naming the shape."""
    fmt = str(file_format).upper()
    base = output[:-len(EXTENSIONS[fmt])] if output.lower().endswith(EXTENSIONS[fmt]) else output
    shape = tuple(int(v) for v in shape)
    x = Tensor(np.zeros(shape, np.float32))
    path = base + EXTENSIONS[fmt]
    # written beside and renamed: a failed or killed export leaves an earlier file intact
    with atomic.writing(path) as tmp:
        if fmt == "ONNX":
            from mindspore import onnx
            try:
                onnx.export(net, x, file_name=tmp, input_names=["input"],
                            output_names=["logits"])
            except (RuntimeError, TypeError) as exc:
                raise ExportError(f"MindSpore's ONNX exporter cannot translate this network "
                                  f"({_first_line(exc)}); MINDIR export works "
                                  "for every model") from None
            except ValueError as exc:
                raise ExportError(f"the network cannot run on a {shape} input: "
                                  f"{_first_line(exc)}") from None
        else:
            try:
                ms.export(net, x, file_name=tmp[:-len(EXTENSIONS[fmt])], file_format=fmt)
            except (ValueError, RuntimeError, TypeError) as exc:
                raise ExportError(f"the network cannot run on a {shape} input: "
                                  f"{_first_line(exc)}") from None
        if not os.path.isfile(tmp):
            raise ExportError(f"MindSpore reported no error but wrote no {path}")
    return path


# ---------------------------------------------------------------- the 310 flow's files
def image_name(class_name, file_name):
    """The name of an image in label.json and result_Files: <class>_<stem>."""
    return f"{class_name}_{os.path.splitext(os.path.basename(file_name))[0]}"


def list_images(split_dir, classes, extensions):
    """[(name, path, label)] of split_dir/<class>/<image>, classes and files sorted."""
    items = []
    for label, cls in enumerate(classes):
        folder = os.path.join(split_dir, cls)
        for fname in sorted(os.listdir(folder)):
            if fname.lower().endswith(extensions):
                items.append((image_name(cls, fname), os.path.join(folder, fname), label))
    names = [n for n, _, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"image names in {split_dir} are not unique as <class>_<stem>")
    return items


def write_labels(directory, items):
    path = os.path.join(directory, LABEL_FILE)
    with open(path, "w") as fh:
        json.dump({name: label for name, _, label in items}, fh, indent=0, sort_keys=True)
    return path


def read_labels(path):
    with open(path) as fh:
        return {str(k): int(v) for k, v in json.load(fh).items()}


def infer_args(cfg):
    """The JPEG route's preprocessing flags, as the C++ program and the twin parse them."""
    def numbers(values):
        return ",".join(repr(float(v)) for v in values)
    return (f"--resize={cfg['eval_resize']} --crop={cfg['image_size']} "
            f"--mean={numbers(cfg['mean'])} --std={numbers(cfg['std'])} "
            f"--interpolation={cfg['interpolation']}")


def parse_infer_args(text):
    """{'resize': int, 'crop': int, 'mean': [3 floats], 'std': [...], 'interpolation': str}."""
    args = dict(item[2:].split("=", 1) for item in text.split())
    return {"resize": int(args["resize"]), "crop": int(args["crop"]),
            "mean": [float(v) for v in args["mean"].split(",")],
            "std": [float(v) for v in args["std"].split(",")],
            "interpolation": args["interpolation"]}


def write_bin(path, array):
    array = np.ascontiguousarray(array, np.float32)
    array.tofile(path)
    return path


def read_bin(path, shape):
    data = np.fromfile(path, np.float32)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} float32 values, expected {shape}")
    return data.reshape(shape)


def result_path(result_dir, name):
    return os.path.join(result_dir, f"{name}_0.bin")


def read_results(result_dir, labels):
    """(logits (N, classes) float32, labels (N,)) of every labelled image's result file."""
    logits, targets = [], []
    for name in sorted(labels):
        path = result_path(result_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no result file {path} for image {name}")
        logits.append(np.fromfile(path, np.float32))
        targets.append(labels[name])
    if not logits:
        raise ValueError(f"label file lists no images; nothing to score in {result_dir}")
    return np.stack(logits), np.asarray(targets, np.int64)


def bin_inputs(input_dir):
    """[(name, path)] of the .bin files of a directory, sorted."""
    return [(os.path.splitext(os.path.basename(p))[0], p)
            for p in sorted(glob.glob(os.path.join(input_dir, "*.bin")))]


def jpeg_inputs(input_dir):
    """[(name, path)] of input_dir/<class>/<image> (the C++ program's walk)."""
    classes = sorted(d for d in os.listdir(input_dir) if os.path.isdir(os.path.join(input_dir, d)))
    from .data.image_check import IMAGE_EXTENSIONS
    return [(name, path) for name, path, _ in list_images(input_dir, classes, IMAGE_EXTENSIONS)]


class MindIRRunner:
    """A MindIR executed with nn.GraphCell on the local backend."""

    def __init__(self, mindir_path):
        self.graph = nn.GraphCell(ms.load(mindir_path))

    def outputs(self, x):
        """Every output of the graph as a NumPy array (a multi-output MindIR)."""
        out = self.graph(Tensor(np.ascontiguousarray(x, np.float32)))
        return [o.asnumpy() for o in (out if isinstance(out, (tuple, list)) else [out])]

    def __call__(self, x):
        return self.graph(Tensor(np.ascontiguousarray(x, np.float32))).asnumpy()
