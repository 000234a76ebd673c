"""Comparison with the official PyTorch code's outputs and gradients (the golden files of
tests/data/golden, written by tests/make_golden.py): shared by the test suite and the
preflight, which runs it on the accelerator."""
import json
import os

import numpy as np
import mindspore as ms
from mindspore import Tensor

from ..convert import load_torch_state_dict

# in a clone of the repository; an installed package has no test data
GOLDEN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tests", "data", "golden")


def load_golden(name, folder=GOLDEN_DIR):
    """(constructor arguments, {array name: array}) of one golden case."""
    data = np.load(os.path.join(folder, name + ".npz"))
    ctor = json.loads(str(data["ctor"]))
    return ctor, {k: data[k] for k in data.files if k != "ctor"}


def official_state(golden):
    """{official name: array} of a golden case's parameters and buffers."""
    return {k.split("/", 1)[1]: v for k, v in golden.items()
            if k.startswith(("param/", "buffer/"))}


def output_and_grads(net, x, probe):
    """Output, d(sum(out * probe))/dx and {parameter name: gradient} in the current mode."""
    x, probe = Tensor(x), Tensor(probe)
    params = net.trainable_params()

    def loss_fn(inp):
        out = net(inp)
        return (out * probe).sum(), out

    # the output comes with the gradients: one graph to compile, not two
    (_, out), (gx, gparams) = ms.value_and_grad(loss_fn, 0, params, has_aux=True)(x)
    return out.asnumpy(), gx.asnumpy(), {p.name: g.asnumpy() for p, g in zip(params, gparams)}


def deviation(ours, ref, rel, what, floor=1.0, scale=None):
    """(what, max|ours - ref|, bound): bound = rel * max(floor, max|scale|), scale defaulting
    to ref (with floor 1, the golden README's bound). A shape mismatch is an infinite error."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    bound = rel * max(floor, float(np.abs(ref if scale is None else scale).max()))
    if ours.shape != ref.shape:
        return f"{what}: shape {ours.shape} != {ref.shape}", float("inf"), bound
    return what, float(np.abs(ours - ref).max()), bound


def golden_deviations(net, golden, state, rel, what, floor=1.0):
    """Load `state` (official names) into `net`, run output and gradients, and return a
    deviation() per compared array: output, input gradient, every parameter gradient."""
    loaded = load_torch_state_dict(net, state)
    out, gx, gparams = output_and_grads(net, golden["input"], golden["probe"])
    found = [deviation(out, golden["output"], rel, f"{what} output", floor),
             deviation(gx, golden["grad/input"], rel, f"{what} grad/input", floor)]
    compared = 0
    for official, param in loaded.items():
        if param.requires_grad:
            ref = golden["grad/param/" + official]
            # conv_p.bias's gradient is zero in exact arithmetic (it cancels in the softmax):
            # what remains is rounding of sums as large as conv_p.weight's gradient.
            scale = (golden["grad/param/" + official[:-len("bias")] + "weight"]
                     if official.endswith("conv_p.bias") else None)
            found.append(deviation(gparams[param.name], ref, rel,
                                   f"{what} grad of {official}", floor, scale))
            compared += 1
    if compared != len(gparams):
        found.append((f"{what}: {len(gparams) - compared} parameter gradient(s) without a "
                      "reference", float("inf"), 0.0))
    return found
