"""The blocked ("halo") local attention beyond the shared parity tests: block sizes that do not
divide the map, the blocked-window helpers of ops.halo, its float16 handling under AMP O2, the
device placement of the implementations, and the recompute model keyword."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from mindspore_acmix import create_model
from mindspore_acmix.layers import SAM, ACmix, describe_implementations, place_network
from mindspore_acmix.ops import halo
from mindspore_acmix.implementations import unavailable_reason
from mindspore_acmix.ops.local_attention import HaloLocalAttention
from mindspore_acmix.runtime import jit_level

from conftest import assert_close
from test_local_attention import torch_attention_and_grads

BLOCKED = [
    # kernel_size, stride, dilation, (bn, d, h, w), block
    (7, 1, 1, (2, 3, 11, 9), 4),      # 11 x 9 queries in 4 x 4 blocks: partial blocks both ways
    (5, 2, 1, (1, 2, 11, 9), 4),      # stride 2, odd sizes: 6 x 5 queries in 4 x 4 blocks
    (3, 2, 2, (2, 3, 9, 10), 2),      # stride and dilation: 5 x 5 queries in 2 x 2 blocks
]


@pytest.mark.parametrize("geometry", BLOCKED, ids=lambda g: f"k{g[0]}s{g[1]}d{g[2]}b{g[4]}")
def test_blocks_that_do_not_divide_the_map_match_torch(geometry):
    kernel_size, stride, dilation, (bn, d, h, w), block = geometry
    grid = halo.BlockGrid(h, w, kernel_size, stride, dilation, block)
    assert grid.block == block and (grid.out_h % block or grid.out_w % block)
    rng = np.random.default_rng(block)
    ho, wo = -(-h // stride), -(-w // stride)
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in ((bn, d, h, w), (bn, d, h, w), (bn, d, h, w), (1, d, h, w), (bn, d, ho, wo))]
    attn = HaloLocalAttention(kernel_size, stride, dilation, block=block)
    q, k, v, pe, probe = (Tensor(a) for a in arrays)

    def loss(*inputs):
        return (attn(*inputs) * probe).sum()

    _, grads = ms.value_and_grad(loss, (0, 1, 2, 3))(q, k, v, pe)
    got = [attn(q, k, v, pe).asnumpy()] + [g.asnumpy() for g in grads]
    for name, ours, ref in zip(("out", "dq", "dk", "dv", "dpe"), got,
                               torch_attention_and_grads(geometry[:4], arrays)):
        assert_close(ours, ref, 1e-5, f"halo {geometry} {name}")


def test_window_index_mask_and_tiles_agree_with_unfold():
    """The constant window maps: the tiles at window_index reproduce ops.unfold's windows of
    the padded map, and the mask is open exactly there (finite in float16)."""
    k, s, d, h, w = 3, 2, 1, 7, 8
    grid = halo.BlockGrid(h, w, k, s, d, block=2)
    x = np.random.default_rng(0).standard_normal((1, 2, h, w)).astype(np.float32)
    pad = d * (k - 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    tiles = halo.halo_tiles(Tensor(x), grid, pad).asnumpy()          # (nb, L*L, C)
    windows = tiles[:, halo.window_index(grid).reshape(-1)]           # (nb, b*b*k*k, C)
    b, by, bx = grid.block, grid.blocks_y, grid.blocks_x
    windows = windows.reshape(bx, by, b, b, k, k, 2)                  # blocks in (tx, ty) order
    for i in range(grid.out_h):
        for j in range(grid.out_w):
            expected = xp[0, :, i * s:i * s + (k - 1) * d + 1:d, j * s:j * s + (k - 1) * d + 1:d]
            np.testing.assert_array_equal(windows[j // b, i // b, i % b, j % b].transpose(2, 0, 1),
                                          expected)
    # the adjoint is the transpose: <tiles(x), t> == <x, adjoint(t)>
    t = np.random.default_rng(1).standard_normal(tiles.shape).astype(np.float32)
    back = halo.halo_tiles_adjoint(Tensor(t), grid, h, w, pad).asnumpy()
    np.testing.assert_allclose((tiles * t).sum(), (x * back).sum(), rtol=1e-5)
    mask = halo.window_mask(grid)
    assert ((mask == 0).sum(1) == k * k).all()
    assert np.isfinite(np.float16(halo.MASK_VALUE)) and np.exp(np.float32(halo.MASK_VALUE)) == 0


def test_amp_o2_keeps_logits_mask_and_softmax_in_float32(pynative):
    """Under auto_mixed_precision O2 (the Ascend/GPU default) the layer runs in float16; the
    attention's logits, mask and softmax, and their recomputation and gradients in the
    backward, must still run in float32 (PyNative: each primitive call is observed with the
    dtypes it really gets)."""
    ms.set_seed(0)
    net = ACmix(8, 8, kernel_att=3, head=2, attn_impl="halo")
    x = Tensor(np.random.default_rng(1).standard_normal((1, 8, 6, 6)).astype(np.float32))
    reference = net(x).asnumpy()
    seen = {}
    core = net.attention.core

    def spy(name, owner, attr):
        prim = getattr(owner, attr)

        def call(*args):
            seen.setdefault(name, set()).add(tuple(a.dtype for a in args))
            return prim(*args)
        setattr(owner, attr, call)

    for attr in ("matmul", "bias_add", "softmax"):
        spy(attr, core.scores, attr)
    for attr in ("dprob", "dqueries", "dkeys"):
        spy(attr, core.score_grads, attr)
    spy("values_matmul", core, "values_matmul")
    spy("dvalues", core, "dvalues")
    amp_net = ms.amp.auto_mixed_precision(net, "O2")

    def loss(inp):
        return amp_net(inp).sum()

    out = amp_net(x).asnumpy()
    grad = ms.grad(loss)(x).asnumpy()
    f32, f16 = ms.float32, ms.float16
    assert seen["matmul"] == seen["bias_add"] == seen["dprob"] == {(f32, f32)}
    assert seen["softmax"] == {(f32,)}, "forward and the backward's recomputation"
    assert seen["dqueries"] == seen["dkeys"] == {(f32, f32)}
    assert seen["values_matmul"] == seen["dvalues"] == {(f16, f16)}, "values: half precision"
    assert np.isfinite(out).all() and np.isfinite(grad).all()
    assert_close(out, reference, 2e-2, "O2 output")


@pytest.mark.slow
def test_a_network_runs_what_its_device_needs():
    """Built for one device target and run under another: re-placed when called directly,
    a one-line error naming both inside a compiled graph, logged by describe_implementations;
    SAN's module (SAM) placed like ACmix."""
    net = ACmix(8, 8, kernel_att=3, head=2)
    place_network(net, "GPU")
    assert net.attn_impl == "halo" and {c.impl for c in (net.conv1, net.dep_conv)} == {"native"}
    assert describe_implementations(net) == "attention halo, convolutions native"
    sam = place_network(SAM(0, 8, 2, 8, 4, kernel_size=3), "Ascend")
    assert sam.san_impl == "halo" and describe_implementations(sam) == \
        "SAN operators halo, convolutions native"
    with pytest.raises(ValueError, match="SAM was built for device target Ascend but runs under"):
        nn.SequentialCell([sam])(Tensor(np.ones((1, 8, 6, 6), np.float32)))
    sam(Tensor(np.ones((1, 8, 6, 6), np.float32)))
    assert sam.san_impl == ("aot" if unavailable_reason("san") is None else "halo")
    x = Tensor(np.ones((1, 8, 6, 6), np.float32))
    outer = nn.SequentialCell([net])  # inside a graph, only the outer cell's __call__ runs
    with pytest.raises(ValueError, match="built for device target GPU but runs under CPU"):
        outer(x)
    net(x)  # called directly it re-places itself for the CPU it runs on
    cpu = "aot" if unavailable_reason("attention") is None else "halo"
    assert net.attn_impl == cpu and net.conv1.impl == "matmul"
    np.testing.assert_allclose(outer(x).asnumpy(), net(x).asnumpy())
    if cpu == "aot":
        explicit = ACmix(8, 8, kernel_att=3, head=2, attn_impl="aot")
        with pytest.raises(ValueError, match="attn_impl='aot'.*CPU but runs under Ascend"):
            place_network(explicit, "Ascend")
    assert jit_level("Ascend") == "O1" and jit_level("CPU") == "O0"


def test_recompute_gives_the_plain_gradients():
    """model_kwargs {recompute: true} marks every block; a recomputed block's gradients are the
    plain ones (two small bottlenecks, so the test compiles in seconds)."""
    from mindspore_acmix.factory import recompute_blocks
    from mindspore_acmix.models.resnet import Bottleneck
    marked = create_model("resnet_tiny", num_classes=3, recompute=True)
    blocks = [c for _, c in marked.cells_and_names() if isinstance(c, Bottleneck)]
    assert blocks and all(str(c._scope).startswith("recompute_") for c in blocks)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 8, 6, 6)).astype(np.float32))

    def gradients(recompute):
        ms.set_seed(0)
        net = nn.SequentialCell([Bottleneck(8, 2), Bottleneck(8, 2)])
        net.set_train(True)
        if recompute:
            assert recompute_blocks(net) == 2

        def loss(inp):
            return (net(inp) ** 2).sum()

        return ms.jit(ms.value_and_grad(loss, None, net.trainable_params()))(x)[1]

    plain, recomputed = gradients(False), gradients(True)
    assert len(plain) == len(recomputed) > 0
    for a, b in zip(plain, recomputed):
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="recompute: .* no bottleneck or transformer block"):
        recompute_blocks(nn.Dense(2, 2))
