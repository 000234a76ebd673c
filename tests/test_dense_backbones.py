"""Dense-prediction mode (features_only=True) of every family: any input size at or above
min_input_size, values against PyTorch statements of the official dense backbones (Swin's
segmentation backbone, PVT v1's dense backbone) at non-square sizes, equality with the
classification path at the build size, the minimum-size errors, and loading a
classification checkpoint into a dense backbone (checkpoint.load_backbone_checkpoint)."""
import numpy as np
import mindspore as ms
import pytest
from mindspore import Tensor

from mindspore_acmix import create_model
from mindspore_acmix.checkpoint import (CheckpointError, load_backbone_checkpoint,
                                        save_checkpoint_atomic)
from mindspore_acmix.convert import load_torch_state_dict

from conftest import assert_close

torch = pytest.importorskip("torch")

import torch_pvt_reference as pvt_ref  # noqa: E402
import torch_swin_seg_reference as swin_ref  # noqa: E402
from torch_reference import perturb_  # noqa: E402

# tiny members; window 7 as the official one, so that 100x132 pads at every stage and its
# stage 4 (4x5) is smaller than a window, where the shift must stay on
SWIN = dict(embed_dim=12, depths=(2, 2, 2, 2), num_heads=(3, 3, 3, 3), window_size=7)
PVT = dict(embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 2, 4), mlp_ratios=(2, 2, 2, 2),
           depths=(1, 1, 1, 1), sr_ratios=(8, 4, 2, 1))
REL = 1e-4


def image(h, w, batch=1, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32)


def torch_outputs(module, x, forward=None):
    with torch.no_grad():
        outs = (forward or module)(torch.from_numpy(x))
    return [o.numpy() for o in outs]


def compare(net, module, x, forward=None, what="", unused=()):
    """net's maps against the torch module's, with the torch state (but the `unused`
    entries) loaded into net."""
    state = {k: v.numpy() for k, v in module.state_dict().items() if k not in unused}
    load_torch_state_dict(net, state)
    net.set_train(False)
    ours = [o.asnumpy() for o in net(Tensor(x))]
    ref = torch_outputs(module, x, forward)
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert_close(a, b, REL, f"{what} stage {i}")
    return ours


@pytest.mark.parametrize("name,acmix", [("swin_tiny", False), ("swin_acmix_tiny", True)])
def test_swin_matches_the_official_segmentation_backbone_at_100x132(name, acmix, pynative):
    """Padding at the patch embedding and in every block (25x33 -> 28x35, 13x17 -> 14x21,
    7x9 -> 7x14, 4x5 -> 7x7 with the shift kept), odd PatchMerging, output norms."""
    module = perturb_(swin_ref.SwinSeg(acmix=acmix, **SWIN).eval())
    net = create_model(name, features_only=True, drop_path_rate=0.0, **SWIN)
    outs = compare(net, module, image(100, 132), what=name)
    assert [o.shape[2:] for o in outs] == [(25, 33), (13, 17), (7, 9), (4, 5)]


@pytest.mark.parametrize("name,acmix", [("pvt_tiny", False), ("pvt_acmix_tiny", True)])
def test_pvt_matches_the_official_dense_backbone_at_100x150(name, acmix, pynative):
    """Position tables resized bilinearly from the 224 grids (56/28/14/7) to 25x37, 12x18,
    6x9, 3x4; no class token; maps not divisible by sr_ratio (25x37 by 8) in PVT-ACmix."""
    module = pvt_ref.PVT(img_size=224, num_classes=1, acmix=acmix, **PVT)
    perturb_(module.eval())
    net = create_model(name, features_only=True, drop_path_rate=0.0, **PVT)
    unused = ("cls_token", "norm.weight", "norm.bias", "head.weight", "head.bias")
    outs = compare(net, module, image(100, 150), module.forward_dense, name, unused)
    assert [o.shape[2:] for o in outs] == [(25, 37), (12, 18), (6, 9), (3, 4)]
