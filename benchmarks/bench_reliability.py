"""What the reliability measures cost (a benchmark, not a test).

    python benchmarks/bench_reliability.py [--images 512] [--size 224] [--repeat 3] [--json PATH]

pipeline: images/s of the ImageFolder eval pipeline (Decode, resize, crop, normalise) over
    generated JPEGs, with and without the header check that runs in front of Decode.
checkpoint: seconds to save and to read back acmix_resnet50's parameters with the CRC and
    entry count (save_checkpoint_atomic / read_checkpoint) against plain ms.save_checkpoint /
    ms.load_checkpoint. Both write to the same folder; the atomic save adds fsyncs.

Variants alternate within each repetition; the figure is the median.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np


def make_jpegs(root, count, size):
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size // 8, size // 8, 3)).astype(np.uint8)
    for i in range(count):
        folder = os.path.join(root, "val", f"c{i % 4}")
        os.makedirs(folder, exist_ok=True)
        image = Image.fromarray(np.roll(base, i, axis=0)).resize((size, size))
        image.save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)


def pipeline_rate(root, checked, size, workers):
    import mindspore.dataset as ds
    from mindspore_acmix.data.pipeline import eval_transforms

    ops = eval_transforms(size + 32, size, [0.0] * 3, [1.0] * 3)
    if not checked:
        ops = ops[1:]  # without check_encoded
    data = ds.ImageFolderDataset(os.path.join(root, "val"), shuffle=False)
    data = data.map(ops, "image", num_parallel_workers=workers).batch(32)
    start, count = time.perf_counter(), 0
    for images, _ in data.create_tuple_iterator(num_epochs=1, output_numpy=True):
        count += len(images)
    return count / (time.perf_counter() - start)


def checkpoint_times(folder):
    import mindspore as ms
    from mindspore_acmix import create_model
    from mindspore_acmix.checkpoint import read_checkpoint, save_checkpoint_atomic

    net = create_model("acmix_resnet50")
    entries = [{"name": p.name, "data": p} for p in net.get_parameters()]
    out = {}
    start = time.perf_counter()
    save_checkpoint_atomic(entries, os.path.join(folder, "ours.ckpt"), {"epoch": 1})
    out["ours_save"] = time.perf_counter() - start
    start = time.perf_counter()
    ms.save_checkpoint(entries, os.path.join(folder, "plain.ckpt"), append_dict={"epoch": 1})
    out["plain_save"] = time.perf_counter() - start
    start = time.perf_counter()
    read_checkpoint(os.path.join(folder, "ours.ckpt"))
    out["ours_load"] = time.perf_counter() - start
    start = time.perf_counter()
    ms.load_checkpoint(os.path.join(folder, "plain.ckpt"))
    out["plain_load"] = time.perf_counter() - start
    out["size_mb"] = os.path.getsize(os.path.join(folder, "ours.ckpt")) / 2 ** 20
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    import mindspore as ms
    ms.set_device("CPU")

    with tempfile.TemporaryDirectory() as tmp:
        make_jpegs(tmp, args.images, args.size)
        pipeline_rate(tmp, True, args.size, args.workers)  # warm the file cache
        rates = {True: [], False: []}
        for _ in range(args.repeat):
            for checked in (False, True):
                rates[checked].append(pipeline_rate(tmp, checked, args.size, args.workers))
        times = [checkpoint_times(tmp) for _ in range(args.repeat)]
    result = {
        "pipeline_images_per_s_checked": statistics.median(rates[True]),
        "pipeline_images_per_s_unchecked": statistics.median(rates[False]),
        **{k: statistics.median(t[k] for t in times) for k in times[0]},
    }
    result["pipeline_ratio_checked_vs_unchecked"] = (
        result["pipeline_images_per_s_checked"] / result["pipeline_images_per_s_unchecked"])
    result["save_ratio_ours_vs_plain"] = result["ours_save"] / result["plain_save"]
    result["load_ratio_ours_vs_plain"] = result["ours_load"] / result["plain_load"]
    print(f"pipeline ({args.images} JPEGs at {args.size}, {args.workers} workers): "
          f"{result['pipeline_images_per_s_checked']:.0f} img/s checked vs "
          f"{result['pipeline_images_per_s_unchecked']:.0f} unchecked "
          f"(ratio {result['pipeline_ratio_checked_vs_unchecked']:.3f})")
    print(f"checkpoint acmix_resnet50 ({result['size_mb']:.0f} MB): save "
          f"{result['ours_save']:.3f} s vs {result['plain_save']:.3f} s (ratio "
          f"{result['save_ratio_ours_vs_plain']:.2f}), load {result['ours_load']:.3f} s vs "
          f"{result['plain_load']:.3f} s (ratio {result['load_ratio_ours_vs_plain']:.2f})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
