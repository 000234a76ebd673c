"""Exponential moving average of the weights (`ema: true`, `ema_decay` in a config).

After every optimizer update (inside the compiled train step) each EMA copy moves towards
its parameter: ema = decay * ema + (1 - decay) * param, for every parameter of the network,
BatchNorm's moving statistics included (as timm's ModelEmaV2 and MindCV's TrainStep do).
The copies are named `ema.<parameter name>`, MindCV's convention, so a checkpoint loads
its EMA weights with `eval.py --ema`, `python -m mindspore_acmix.tools.rates --ema` and
`mindcv.create_model(..., checkpoint_path=..., ema=True)`.
"""
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from ..checkpoint import EMA_PREFIX as PREFIX


class EMA(nn.Cell):
    """The EMA copies of `net`'s parameters; calling it applies one update."""

    def __init__(self, net, decay):
        super().__init__(auto_prefix=False)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay!r}")
        self.decay = float(decay)
        params = list(net.get_parameters())
        self.params = ParameterTuple(params)
        self.weights = ParameterTuple(
            Parameter(Tensor(p.asnumpy(), p.dtype), name=PREFIX + p.name, requires_grad=False)
            for p in params)
        self._swap = _Swap(self.weights, self.params)

    def construct(self):
        for ema, param in zip(self.weights, self.params):
            ops.assign(ema, ema * self.decay + param.astype(ema.dtype) * (1.0 - self.decay))
        return True

    def swap(self):
        """Exchange the network's weights and the EMA copies (call twice to undo): how the
        EMA weights are evaluated with the network's own compiled forward pass. Done in a
        compiled graph: a function compiled by ms.jit does not see Parameter.set_data."""
        self._swap()


class _Copy(nn.Cell):
    """dst <- src, parameter by parameter, in a compiled graph."""

    def __init__(self, dst, src):
        super().__init__(auto_prefix=False)
        self.dst, self.src = dst, src

    def construct(self):
        for d, s in zip(self.dst, self.src):
            ops.assign(d, s)
        return True


class _Swap:
    """first <-> second through a third set of Parameters, as three separate graphs, each a
    plain copy: within one graph a read of a parameter may be ordered after its overwrite."""

    def __init__(self, first, second):
        held = ParameterTuple(Parameter(Tensor(p.asnumpy(), p.dtype), name="held." + p.name,
                                        requires_grad=False) for p in first)
        self.steps = (_Copy(held, first), _Copy(first, second), _Copy(second, held))

    def __call__(self):
        for step in self.steps:
            step()


def ema_weights(params):
    """{network parameter name: value} of the EMA copies in a checkpoint's parameter dict."""
    return {name[len(PREFIX):]: value for name, value in params.items()
            if name.startswith(PREFIX)}
