"""The local-attention implementations against the PyTorch statement of the official code
at the function level (geometries beyond the layer tests: kernel 1, dilation 3, stride 4,
minimal sizes), the AOT kernel's build cache and its fallback when no compiler is
available."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor
from mindspore_acmix import implementations
from mindspore_acmix.cpu import build
from mindspore_acmix.implementations import get_class, resolve
from mindspore_acmix.layers import ACmix, SAM

from conftest import assert_close

GEOMETRIES = [
    # kernel_size, stride, dilation, (bn, d, h, w)
    (1, 1, 1, (2, 3, 4, 5)),     # one-pixel window: out = v
    (3, 1, 3, (2, 4, 7, 4)),     # dilation 3, minimal width for padding 3
    (5, 4, 1, (1, 2, 11, 9)),    # stride 4: ceil sizes 3 x 3
    (7, 2, 1, (3, 5, 4, 6)),     # padding 3 on a 4-row map: every row reflects
    (3, 2, 2, (2, 6, 9, 10)),    # stride and dilation together
]


def attention_and_grads(impl, geometry, arrays):
    kernel_size, stride, dilation, _ = geometry
    attn = get_class("attention", impl)(kernel_size, stride, dilation)
    q, k, v, pe, probe = (Tensor(a) for a in arrays)

    def loss(*inputs):
        return (attn(*inputs) * probe).sum()

    _, grads = ms.value_and_grad(loss, (0, 1, 2, 3))(q, k, v, pe)
    return [attn(q, k, v, pe).asnumpy()] + [g.asnumpy() for g in grads]


def torch_attention_and_grads(geometry, arrays):
    torch = pytest.importorskip("torch")
    import torch_reference
    q, k, v, pe, probe = (torch.tensor(a, requires_grad=True) for a in arrays)
    out = torch_reference.local_attention(q, k, v, pe, *geometry[:3])
    (out * probe).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in (q, k, v, pe)]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"k{g[0]}s{g[1]}d{g[2]}")
def test_matches_torch(geometry, attn_impl):
    kernel_size, stride, _, (bn, d, h, w) = geometry
    rng = np.random.default_rng(kernel_size * 10 + stride)
    ho, wo = -(-h // stride), -(-w // stride)
    arrays = [rng.standard_normal(s).astype(np.float32)
              for s in ((bn, d, h, w), (bn, d, h, w), (bn, d, h, w), (1, d, h, w), (bn, d, ho, wo))]
    expected = torch_attention_and_grads(geometry, arrays)
    got = attention_and_grads(attn_impl, geometry, arrays)
    for name, ours, ref in zip(("out", "dq", "dk", "dv", "dpe"), got, expected):
        assert_close(ours, ref, 1e-5, f"{attn_impl} {geometry} {name}")
    if kernel_size == 1:
        assert_close(got[0], arrays[2], 1e-6, "one-pixel window returns v")


def test_auto_picks_the_kernel_on_cpu_and_the_portable_path_elsewhere():
    """One resolver for every kind of choice: the CPU implementation where it runs, the
    portable one on every other device."""
    assert ms.get_context("device_target") == "CPU"
    expected = "aot" if implementations.unavailable_reason("attention") is None else "halo"
    assert resolve("attention", "auto") == expected
    assert ACmix(8, 8).attn_impl == expected
    for kind, portable in (("attention", "halo"), ("san", "halo"), ("convolution", "native")):
        assert resolve(kind, "auto", "GPU") == resolve(kind, "auto", "Ascend") == portable
    assert resolve("convolution", "auto") == "matmul"


def test_no_compiler_falls_back_to_halo_with_one_warning(monkeypatch, recwarn):
    monkeypatch.setattr(build, "find_compiler", lambda: None)
    monkeypatch.setattr(build, "_libraries", {})
    monkeypatch.setattr(implementations, "_warned", set())
    with pytest.warns(UserWarning, match="no C\\+\\+ compiler found.*attn_impl='halo'"):
        assert ACmix(8, 8).attn_impl == "halo"
    recwarn.clear()
    assert SAM(0, 4, 2, 8, 4).san_impl == "halo"   # the same reason: no second warning
    assert not [w for w in recwarn if "C++" in str(w.message)]
    with pytest.raises(RuntimeError, match="attn_impl='aot' is unavailable: no C\\+\\+ compiler"):
        ACmix(8, 8, attn_impl="aot")


def test_failed_compile_reports_the_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("ACMIX_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    with pytest.raises(build.KernelBuildError, match="compiling .*local_attention_cpu.cc"):
        build.build_kernel("local_attention_cpu.cc")
    assert list(tmp_path.iterdir()) == [], "a failed build leaves no file in the cache"


def test_kernel_is_built_once_into_the_cache(monkeypatch, tmp_path):
    if build.find_compiler() is None:
        pytest.skip("no C++ compiler")
    monkeypatch.setenv("ACMIX_KERNEL_CACHE", str(tmp_path / "cache"))
    path = build.build_kernel("local_attention_cpu.cc")
    assert path.startswith(str(tmp_path / "cache")) and path.endswith(".so")
    mtime = (tmp_path / "cache" / path.rsplit("/", 1)[1]).stat().st_mtime_ns
    assert build.build_kernel("local_attention_cpu.cc") == path
    assert (tmp_path / "cache" / path.rsplit("/", 1)[1]).stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.rsplit("/", 1)[1]]


def test_invalid_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"attn_impl must be 'auto' or one of \['aot', 'halo', "
                                         r"'unfold'\], got 'cuda'"):
        ACmix(8, 8, attn_impl="cuda")
    with pytest.raises(ValueError, match=r"conv_impl must be 'auto' or one of \['matmul', "
                                         r"'native'\], got 'cuda'"):
        resolve("convolution", "cuda")


def test_aot_layers_of_two_strides_on_one_input_shape(pynative):
    """PyNative caches a Custom op's output shape by op name and input shapes: two "aot"
    attentions of strides 1 and 2 on the same input each get their own shape and values."""
    if implementations.unavailable_reason("attention") is not None:
        pytest.skip(implementations.unavailable_reason("attention"))
    rng = np.random.default_rng(3)
    q, k, v = (Tensor(rng.standard_normal((2, 3, 7, 6)).astype(np.float32)) for _ in range(3))
    pe = Tensor(rng.standard_normal((1, 3, 7, 6)).astype(np.float32))
    for stride, shape in ((1, (2, 3, 7, 6)), (2, (2, 3, 4, 3))):
        got = get_class("attention", "aot")(3, stride)(q, k, v, pe).asnumpy()
        assert got.shape == shape
        assert_close(got, get_class("attention", "unfold")(3, stride)(q, k, v, pe).asnumpy(), 1e-5,
                     f"aot stride {stride}")
