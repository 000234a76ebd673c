"""Benchmark of the ACmix layers and models (a benchmark, not a test).

    python benchmarks/bench_acmix.py [--mode layer|san|model|infer|dense|graph] [--json PATH]

layer (default), san: one ACmix layer / SAN's patchwise SAM against a 3x3 convolution, time
    and peak memory (benchmarks/layers.py).
model, infer, dense: acmix_resnet50 against resnet50: training step, MindIR inference,
    training step at dense-prediction sizes (benchmarks/models.py).
graph: operators in the compiled graphs and compile times (benchmarks/graphs.py).

Each measurement that needs a process of its own runs benchmarks/probe.py; the variants of
one measurement take turns and ratios are between medians of the same run
(benchmarks/common.py).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common, graphs, layers, models  # noqa: E402

MODES = {"layer": layers.layer_mode, "san": layers.san_mode, "model": models.model_mode,
         "infer": models.infer_mode, "dense": models.dense_mode, "graph": graphs.graph_mode}


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=tuple(MODES), default="layer")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=7, help="timed repetitions (layer and san modes)")
    p.add_argument("--model-repeat", type=int, default=5,
                   help="timed repetitions (model, infer and dense modes)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for torch and the AOT kernel (MindSpore uses all cores)")
    p.add_argument("--shapes", help="layer and san modes: comma-separated C@S, e.g. 64@56,128@28")
    p.add_argument("--impls", help="layer and san modes: comma-separated implementation names to "
                   "time besides the default (all by default; the timed variants share one "
                   "process, so on a small machine time 'unfold' in a separate run); graph mode: "
                   "the attn_impls to count; dense mode: the variants, from "
                   f"{','.join(models.DENSE_VARIANTS)}")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--no-native-conv", action="store_true",
                   help="layer mode: skip MindSpore's Conv2D (minutes per step at 256x256 on CPU)")
    p.add_argument("--stride", type=int, default=1,
                   help="layer mode: the stride of the ACmix layer and the 3x3 convolutions")
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--infer-batch", type=int, default=1)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--graph-batch", type=int, default=8, help="graph mode: the step's batch")
    p.add_argument("--graph-image", type=int, default=112, help="graph mode: the step's image")
    p.add_argument("--compile-cap", type=int, default=1200,
                   help="graph and dense modes: seconds a probe may take before it counts as "
                   "failed")
    p.add_argument("--no-model", action="store_true", help="graph mode: layers only")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if args.mode == "dense" and args.impls:
        unknown = set(args.impls.split(",")) - set(models.DENSE_VARIANTS)
        if unknown:
            p.error(f"--mode dense: unknown variant(s) {', '.join(sorted(unknown))} in --impls "
                    f"(choose from {', '.join(models.DENSE_VARIANTS)})")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    info = common.machine_info(args.threads)
    print(json.dumps(info), flush=True)
    result = {"machine": info, "mode": args.mode,
              "command": " ".join([os.path.relpath(sys.argv[0], common.ROOT)] + sys.argv[1:])}
    result[args.mode] = MODES[args.mode](args)
    result["machine"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        # graph mode: {impl: {...}} exactly, the machine in each implementation's entry
        common.write_json(args.json, {impl: dict(row, machine=result["machine"]) for impl, row
                                      in result["graph"].items()}
                          if args.mode == "graph" else result)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
