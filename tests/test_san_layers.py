"""SAN's SAM, SAN-ACmix's SAMACmix and SAN's operators (ops.san)."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix.convert import load_torch_state_dict
from mindspore_acmix.layers import SAM, SAMACmix
from mindspore_acmix.implementations import get_class

from conftest import assert_close, check_against, load_golden, official_state

REL = 1e-5  # the golden README's bound for layers
LAYER_CASES = ["san_sam_patch_c32", "san_sam_pair_c32", "san_acmix_sam_patch_c32"]


def build_sam(ctor, san_impl):
    ctor = dict(ctor)
    cls = {"SAM": SAM, "SAM_ACmix": SAMACmix}[ctor.pop("cls")]
    net = cls(**ctor, san_impl=san_impl)
    net.set_train(False)  # golden files were made in eval mode: BatchNorm uses running stats
    return net


@pytest.mark.parametrize("case", LAYER_CASES)
def test_sam_golden_graph(case, san_impl):
    ctor, golden = load_golden(case)
    check_against(build_sam(ctor, san_impl), golden, official_state(golden), REL,
                  f"{case} [{san_impl}]")


def test_sam_golden_pynative(san_impl, pynative):
    ctor, golden = load_golden("san_sam_pair_c32")
    check_against(build_sam(ctor, san_impl), golden, official_state(golden), REL,
                  f"san_sam_pair_c32 [{san_impl}] (PyNative)")


@pytest.mark.parametrize("cls, args, kwargs, match", [
    (SAM, (2, 16, 2, 8, 4), {}, "sa_type must be 0 .pairwise. or 1 .patchwise., got 2"),
    (SAM, (1, 16, 2, 8, 4), {"kernel_size": 4}, "kernel_size must be odd"),
    (SAM, (1, 16, 2, 8, 3), {}, r"out_planes \(8\) must be divisible by share_planes \(3\)"),
    (SAM, (1, 16, 2, 8, 4), {"stride": 2}, "stride must be 1 for the patchwise SAM"),
    (SAM, (0, 16, 0, 8, 4), {}, "rel_planes must be a positive integer"),
    (SAMACmix, (1, 16, 3, 8, 4), {}, r"rel_planes \(3\) must be a multiple of out_planes // "
                                     r"share_planes \(2\)"),
    (SAMACmix, (1, 16, 2, 8, 4), {"kernel_conv": 2}, "kernel_conv must be odd"),
    (SAM, (1, 16, 2, 8, 4), {"san_impl": "cupy"}, "san_impl must be 'auto' or one of"),
])
def test_sam_invalid_arguments(cls, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(*args, **kwargs)


def test_sam_input_too_small(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a failed graph compile writes rank_0/ into the cwd
    net = SAM(0, 4, 2, 8, 4, kernel_size=7, stride=2, san_impl="unfold")
    with pytest.raises(ValueError, match="H and W must be at least 4; got 5x3"):
        net(Tensor(np.zeros((1, 4, 5, 3), np.float32)))


def test_sam_wrong_channels(pynative):
    # (graph mode fails earlier, in the shape inference of conv1, with MindSpore's own message)
    net = SAM(0, 4, 2, 8, 4, kernel_size=7, san_impl="unfold")
    with pytest.raises(ValueError, match=r"SAM expects input \(N, 4, H, W\)"):
        net(Tensor(np.zeros((1, 3, 8, 8), np.float32)))


def test_two_geometries_same_input_pynative(san_impl, pynative):
    """PyNative caches a Custom op's output shape by its name, attributes and input shapes:
    two layers of different strides on one input shape must still get their own shapes and
    values (each against the unfold reference with the same weights, on random input)."""
    x = Tensor(np.random.default_rng(0).standard_normal((1, 4, 9, 7)).astype(np.float32))
    for geometry, shape in ((dict(kernel_size=3), (1, 8, 9, 7)),
                            (dict(kernel_size=5, stride=3), (1, 8, 3, 3))):
        # the same layer with the unfold reference operators (ops.references)
        net, twin = (SAM(0, 4, 2, 8, 4, san_impl=impl, **geometry)
                     for impl in (san_impl, "unfold"))
        rng = np.random.default_rng(1)
        for p, q in zip(net.get_parameters(), twin.get_parameters()):
            # away from the init (BatchNorm's 1 and 0 included), the same in both
            value = p.asnumpy() + 0.3 * rng.standard_normal(p.shape)
            value = Tensor((np.abs(value) if "variance" in p.name else value).astype(np.float32))
            assert p.name == q.name
            p.set_data(value)
            q.set_data(value.copy())
        net.set_train(False)
        twin.set_train(False)
        out = net(x).asnumpy()
        assert out.shape == shape and out.std() > 0.1
        assert_close(out, twin(x).asnumpy(), 1e-5, f"SAM {geometry} [{san_impl}]")


def test_export_switches_to_halo(pynative):
    """Export (make_portable) replaces the CPU-only C++ kernels by graph operators."""
    from mindspore_acmix.deploy import make_portable
    ctor, golden = load_golden("san_acmix_sam_patch_c32")
    net = build_sam(ctor, "auto")
    load_torch_state_dict(net, official_state(golden))
    before = net(Tensor(golden["input"])).asnumpy()
    make_portable(net)
    assert net.san_impl == "halo" and isinstance(net.san_ops, get_class("san", "halo"))
    assert_close(net(Tensor(golden["input"])).asnumpy(), before, 1e-5, "portable SAMACmix")


# ---- the operators against NumPy ------------------------------------------------------------
# (kernel, stride, dilation, share, N, C, H, W): kernels 3/5/7, share 1/2/4/8, odd and
# non-square sizes, stride 2 (pairwise) and dilation 2 (both clamp against the reflection)
GEOMETRIES = [
    (3, 1, 1, 1, 2, 3, 5, 7),
    (5, 1, 1, 2, 1, 8, 6, 9),
    (7, 1, 1, 8, 1, 16, 4, 11),
    (3, 2, 1, 4, 2, 8, 7, 6),
    (5, 2, 2, 4, 1, 8, 5, 9),
]


def _reflect(i, n):
    i = np.abs(i)
    return np.where(i >= n, 2 * n - 2 - i, i)


def window_index(h, w, k, s, d):
    """(k*k, Ho*Wo) flat input pixel of window position j of every query."""
    pad = d * (k - 1) // 2
    ys, xs = np.arange(-(-h // s)) * s, np.arange(-(-w // s)) * s
    rows = _reflect(ys[None, :] + np.arange(k)[:, None] * d - pad, h)   # (k, Ho)
    cols = _reflect(xs[None, :] + np.arange(k)[:, None] * d - pad, w)   # (k, Wo)
    idx = rows[:, None, :, None] * w + cols[None, :, None, :]          # (k, k, Ho, Wo)
    return idx.reshape(k * k, -1)


def centre_index(h, w, s):
    return (np.arange(-(-h // s))[:, None] * s * w + np.arange(-(-w // s))[None, :] * s).ravel()


def np_windows(x, idx):
    return x.reshape(x.shape[0], x.shape[1], -1)[:, :, idx]


def np_windows_adjoint(g, idx, shape):
    out = np.zeros((shape[0], shape[1], shape[2] * shape[3]))
    np.add.at(out, (slice(None), slice(None), idx), g)
    return out.reshape(shape)


def numpy_reference(inputs, probes, k, s, d):
    """Outputs of windows(xa), subtraction2(x1, x2), aggregation(x, w) and the gradients of
    sum(output * probe) with respect to xa, x1, x2, x, w, in float64."""
    xa, x1, x2, x, w = (a.astype(np.float64) for a in inputs)
    pa, p2, p3 = (p.astype(np.float64) for p in probes)
    n, c, h, wd = x.shape
    cw = w.shape[1]
    idx, ctr = window_index(h, wd, k, s, d), centre_index(h, wd, s)
    win_x = np_windows(x, idx).reshape(n, c // cw, cw, k * k, -1)
    outs = (np_windows(xa, idx),
            x1.reshape(n, c, -1)[:, :, ctr][:, :, None] - np_windows(x2, idx),
            (win_x * w[:, None]).sum(3).reshape(p3.shape))
    g1 = np.zeros((n, c, h * wd))
    g1[:, :, ctr] = p2.sum(2)
    p3s = p3.reshape(n, c // cw, cw, 1, -1)
    grads = (np_windows_adjoint(pa, idx, xa.shape), g1.reshape(x1.shape),
             -np_windows_adjoint(p2, idx, x2.shape),
             np_windows_adjoint((w[:, None] * p3s).reshape(n, c, k * k, -1), idx, x.shape),
             (win_x * p3s).sum(1))
    return outs, grads


def ops_outputs_and_grads(impl, inputs, probes, k, s, d):
    san = get_class("san", impl)(k, s, d)
    pa, p2, p3 = (Tensor(p) for p in probes)

    def loss_fn(xa, x1, x2, x, w):
        outs = (san.windows(xa), san.subtraction2(x1, x2), san.aggregation(x, w))
        return (outs[0] * pa).sum() + (outs[1] * p2).sum() + (outs[2] * p3).sum(), outs

    (_, outs), grads = ms.value_and_grad(loss_fn, (0, 1, 2, 3, 4), has_aux=True)(
        *(Tensor(a) for a in inputs))
    return [o.asnumpy() for o in outs], [g.asnumpy() for g in grads]


def random_case(geometry, seed=0):
    k, s, d, share, n, c, h, w = geometry
    rng = np.random.default_rng(seed)
    kk, howo = k * k, (-(-h // s)) * (-(-w // s))
    inputs = [rng.standard_normal(shape).astype(np.float32) for shape in
              [(n, c, h, w)] * 4 + [(n, c // share, kk, howo)]]
    probes = [rng.standard_normal(shape).astype(np.float32) for shape in
              [(n, c, kk, howo)] * 2 + [(n, c, -(-h // s), -(-w // s))]]
    return inputs, probes


def check_ops(impl, geometry):
    k, s, d = geometry[:3]
    inputs, probes = random_case(geometry)
    ref_outs, ref_grads = numpy_reference(inputs, probes, k, s, d)
    outs, grads = ops_outputs_and_grads(impl, inputs, probes, k, s, d)
    for name, ours, ref in zip(("windows", "subtraction2", "aggregation"), outs, ref_outs):
        assert_close(ours, ref, 1e-5, f"{name} {geometry} [{impl}]")
    for name, ours, ref in zip(("xa", "x1", "x2", "x", "w"), grads, ref_grads):
        assert_close(ours, ref, 1e-5, f"grad of {name} {geometry} [{impl}]")


def test_ops_numpy(san_impl, pynative):
    # PyNative: one graph compile per geometry would cost more than the whole file's budget;
    # graph mode is covered by the golden cases above, which run every operator
    for geometry in GEOMETRIES:
        check_ops(san_impl, geometry)
