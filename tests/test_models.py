"""Registry, parameter counts, initialisation and invalid arguments (acmix_resnet50 compiled
and run at 224 in graph mode: test_export.py, against PyTorch)."""
import numpy as np
import pytest
from mindspore import Tensor

import mindspore_acmix
from mindspore_acmix import count_params, create_model, list_models
from mindspore_acmix.layers import ACmix
from mindspore_acmix.layers.acmix import shift_kernels

# official counts at 1000 classes (golden README); torchvision's ResNet-50 for the baseline
PARAMS = {"acmix_resnet26": 10_487_816, "acmix_resnet38": 14_410_896,
          "acmix_resnet50": 18_333_976, "resnet50": 25_557_032}


def test_registry_lists_the_resnet_family():
    names = list_models()
    for name in ["acmix_resnet26", "acmix_resnet38", "acmix_resnet50",
                 "resnet26", "resnet38", "resnet50"]:
        assert name in names
    assert list_models("acmix_resnet*") == ["acmix_resnet26", "acmix_resnet38", "acmix_resnet50",
                                          "acmix_resnet_tiny"]
    assert mindspore_acmix.is_model("resnet26") and not mindspore_acmix.is_model("resnet27")


def test_unknown_model_suggests_a_name():
    with pytest.raises(ValueError, match="did you mean acmix_resnet50"):
        create_model("acmix_resnet5")


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts_equal_the_official_code(name):
    assert count_params(create_model(name)) == PARAMS[name]


def test_baselines_differ_only_in_the_3x3():
    """resnet26/38 = torchvision-style bottlenecks at the ACmix depths (SAN's 13.7M / 19.6M)."""
    assert count_params(create_model("resnet26")) == 13_696_552
    assert count_params(create_model("resnet38")) == 19_626_792


def test_num_classes_sets_the_head():
    net = create_model("acmix_resnet26", num_classes=10)
    assert net.fc.weight.shape == (10, 2048)


def test_initialisation_keeps_shift_kernels_and_half_rates():
    net = create_model("acmix_resnet26")
    acmix = net.layer2[0].conv2
    np.testing.assert_array_equal(acmix.dep_conv.weight.asnumpy(), shift_kernels(128, 3))
    np.testing.assert_array_equal(acmix.rate1.asnumpy(), [0.5])
    np.testing.assert_array_equal(acmix.rate2.asnumpy(), [0.5])
    # the other convolutions are Kaiming normal (fan_out): std sqrt(2 / (out * k * k))
    w = net.layer3[0].conv2.conv1.weight.asnumpy()
    assert abs(w.std() / np.sqrt(2 / 256) - 1) < 0.05


def test_official_kaiming_dep_conv_is_an_option():
    net = create_model("acmix_resnet26", dep_conv_init="kaiming")
    w = net.layer1[0].conv2.dep_conv.weight.asnumpy()
    assert not np.array_equal(w, shift_kernels(64, 3))
    assert abs(w.std() / np.sqrt(2 / (64 * 9)) - 1) < 0.05


@pytest.mark.parametrize("kwargs,match", [
    (dict(in_planes=16, out_planes=18, head=4), "out_planes .18. must be divisible by head .4."),
    (dict(in_planes=16, out_planes=16, kernel_att=6), "kernel_att must be odd"),
    (dict(in_planes=16, out_planes=16, kernel_conv=4), "kernel_conv must be odd"),
    (dict(in_planes=16, out_planes=16, dilation=0), "dilation must be a positive integer"),
    (dict(in_planes=16, out_planes=16, stride=1.5), "stride must be a positive integer"),
    (dict(in_planes=0, out_planes=16), "in_planes must be a positive integer"),
    (dict(in_planes=16, out_planes=16, dep_conv_init="zeros"), "dep_conv_init must be one of"),
    (dict(in_planes=16, out_planes=16, attn_impl="cuda"), "attn_impl must be"),
])
def test_invalid_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ACmix(**kwargs)


def test_invalid_model_arguments():
    with pytest.raises(ValueError, match="layers must be four positive block counts"):
        mindspore_acmix.models.ResNet([1, 2, 3])
    with pytest.raises(ValueError, match="num_classes must be a non-negative integer"):
        create_model("resnet26", num_classes=-1)


def test_input_too_small_for_reflection_padding(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a failed graph compile writes rank_0/ into the cwd
    net = ACmix(8, 8, kernel_att=7)
    with pytest.raises(ValueError, match="H and W must be at least 4; got 3x5"):
        net(Tensor(np.zeros((1, 8, 3, 5), np.float32)))
    with pytest.raises(ValueError, match=r"expects input \(N, 8, H, W\)"):
        net(Tensor(np.zeros((1, 4, 8, 8), np.float32)))
