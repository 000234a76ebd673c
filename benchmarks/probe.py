"""One measurement in a fresh process, for the benchmarks (benchmarks/bench_acmix.py starts
these; run one by hand to look at a single figure):

    python benchmarks/probe.py timing --variants conv,acmix:halo --shape 64@56 --batch 2
    python benchmarks/probe.py memory --variant acmix:halo --shape 64@56 --batch 2
    python benchmarks/probe.py macs --variant acmix:halo --shape 64@56 --batch 2
    python benchmarks/probe.py graph --impl halo --target layer_s1
    python benchmarks/probe.py dense --variant resnet50 --batch 1 --image 64

Each prints one line, "PROBE_JSON {...}", with its result. Fresh processes because
MindSpore's memory pool keeps what every compiled graph allocated until the process exits,
so a peak or a timing in a shared process would carry the others' memory. `macs` and `graph`
only compile and run: the caller sets MS_DEV_SAVE_GRAPHS and counts the saved graphs
(benchmarks/graphs.py). Variants: "conv", "conv:native", "acmix:<attn_impl>",
"torch:conv", "torch:acmix", "san:conv", "san<k>:<san_impl>" (benchmarks/layers.py).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common, layers, models  # noqa: E402


def shape(text):
    """"C@S" -> (C, S)."""
    try:
        channels, size = (int(v) for v in text.split("@"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CHANNELS@SIZE, e.g. 64@56, got {text!r}")
    return channels, size


def compile_time(step):
    """Seconds the first call takes beyond the second: the compilation."""
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    step()
    return first - (time.perf_counter() - t0)


def run(args):
    if args.kind == "timing":
        channels, size = args.shape
        return layers.timing_probe(args.variants.split(","), channels, args.batch, size,
                                   args.threads, args.stride, args.repeat, args.warmup)
    if args.kind == "memory":
        channels, size = args.shape
        return layers.memory_probe(args.variant, channels, args.batch, size, args.threads,
                                   args.stride)
    if args.kind == "macs":
        channels, size = args.shape
        return layers.macs_probe(args.variant, channels, args.batch, size, args.stride)
    if args.kind == "graph":
        if args.target == "resnet50":
            common.ms_setup()
            step = models.train_step_fn("acmix_resnet50", args.batch, args.image, 1000,
                                        attn_impl=args.impl)
        else:
            step = layers.graph_step(args.impl, args.target)
        return {"compile_s": compile_time(step)}
    return models.dense_probe(args.variant, args.batch, args.image, args.repeat,
                              args.num_classes)


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    kinds = p.add_subparsers(dest="kind", required=True)

    def layer_args(sub, variant_flag):
        sub.add_argument(variant_flag, required=True)
        sub.add_argument("--shape", type=shape, required=True, help="CHANNELS@SIZE, e.g. 64@56")
        sub.add_argument("--batch", type=int, default=8)
        sub.add_argument("--stride", type=int, default=1)

    timing = kinds.add_parser("timing", help="{variant: [seconds]}, the variants taking turns")
    layer_args(timing, "--variants")
    timing.add_argument("--threads", type=int, default=os.cpu_count())
    timing.add_argument("--repeat", type=int, default=7)
    timing.add_argument("--warmup", type=int, default=2)
    memory = kinds.add_parser("memory", help="peak memory growth (MB) of one variant's step")
    layer_args(memory, "--variant")
    memory.add_argument("--threads", type=int, default=os.cpu_count())
    macs = kinds.add_parser("macs", help="compile and run one variant's forward")
    layer_args(macs, "--variant")
    graph = kinds.add_parser("graph", help="compile time of one ACmix layer or training step")
    graph.add_argument("--impl", required=True, help="attn_impl")
    graph.add_argument("--target", required=True,
                       choices=[*layers.GRAPH_LAYERS, *(f"{t}_fwd" for t in layers.GRAPH_LAYERS),
                                "resnet50"],
                       help="layer_s1 / layer_s2 (fwd+bwd, _fwd: forward only) or resnet50 "
                       "(an acmix_resnet50 training step)")
    graph.add_argument("--batch", type=int, default=8, help="resnet50 only")
    graph.add_argument("--image", type=int, default=112, help="resnet50 only")
    dense = kinds.add_parser("dense", help="peak memory and step time of a model's training step")
    dense.add_argument("--variant", required=True, choices=list(models.DENSE_VARIANTS))
    dense.add_argument("--batch", type=int, default=2)
    dense.add_argument("--image", type=int, default=512)
    dense.add_argument("--repeat", type=int, default=5)
    dense.add_argument("--num-classes", type=int, default=1000)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    common.print_probe_result(run(args))


if __name__ == "__main__":
    main()
