"""Using the package from Python (issue 26): the public API is listed, importing the package
imports no MindSpore and makes it quiet, and models run from Python print no warning of
MindSpore's even at its own default log level."""
import subprocess
import sys

import pytest

import mindspore_acmix
from conftest import REPO_DIR, script_env

LAYERS = ("ACmix", "WindowAttentionACmix", "SAMACmix", "SAM", "PVTAttentionACmix", "shift2d")


def run_python(code, env):
    """`python -c code` in a fresh interpreter at the repository root (so it imports this
    checkout), with the user's environment `env` (a value of None unsets the variable)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_DIR, env=script_env(env), timeout=300)


def test_public_api_is_listed_and_every_name_resolves():
    listed = dir(mindspore_acmix)
    for name in ("create_model", "list_models", "is_model", "register_model", "count_params",
                 *LAYERS):
        assert name in mindspore_acmix.__all__ and name in listed, name
    assert not [name for name in listed if name.startswith("_") and name != "__version__"]
    for name in mindspore_acmix.__all__:
        assert getattr(mindspore_acmix, name) is not None, name
    assert mindspore_acmix.ACmix is mindspore_acmix.layers.ACmix
    models = mindspore_acmix.list_models()
    assert "acmix_resnet_tiny" in models and "swin_acmix_tiny" in models
    assert mindspore_acmix.is_model("san_acmix10") and not mindspore_acmix.is_model("acmix")
    with pytest.raises(AttributeError, match="has no attribute 'acmix_resnet26'"):
        mindspore_acmix.acmix_resnet26  # noqa: B018  (a model is built by name, not an attribute)


IMPORT = ("import os, sys, mindspore_acmix; print('mindspore' in sys.modules, os.environ['GLOG_v'])"
          "; from mindspore_acmix.startup import quiet_mindspore; quiet_mindspore(['--verbose'])"
          "; print(os.environ['GLOG_v'])")


@pytest.mark.parametrize("user_level, level, verbose", [(None, "3", "2"), ("1", "1", "1")])
def test_import_quiets_mindspore_unless_the_user_set_its_level(user_level, level, verbose):
    """Then a script's --verbose shows MindSpore's warnings, or keeps a more verbose level."""
    proc = run_python(IMPORT, {"GLOG_v": user_level})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", level, verbose]


# One image through an ACmix model and the other ACmix layers, graph mode (the default), at
# MindSpore's default log level (GLOG_v=2 shows its warnings): the layers' input checks once
# left calls that the compiler dropped with "Some side effect nodes were eliminated by
# mistake", 8 WARNING lines per ResNet.
MODELS = """
import numpy as np, mindspore as ms
from mindspore_acmix import SAMACmix, WindowAttentionACmix, create_model
ms.set_context(mode=ms.GRAPH_MODE)
nets = {"acmix_resnet_tiny": (create_model("acmix_resnet_tiny", num_classes=3), (1, 3, 32, 32)),
        "SAMACmix": (SAMACmix(0, 8, 2, 8, 4, kernel_size=3), (1, 8, 6, 6)),
        "WindowAttentionACmix": (WindowAttentionACmix(8, 2, 2), (1, 4, 4, 8)),
        # dense mode: the map zero-padded to the window in every block (ops.shift.pad_axis)
        "swin_acmix_tiny dense": (create_model("swin_acmix_tiny", features_only=True, embed_dim=8,
                                               depths=(2, 2, 2, 2), num_heads=(1, 1, 1, 1)),
                                  (1, 3, 100, 132))}
for name, (net, shape) in nets.items():
    net.set_train(False)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = net(ms.Tensor(x))
    outs = out if isinstance(out, (list, tuple)) else [out]
    print(name, all(bool(np.isfinite(o.asnumpy()).all()) for o in outs))
"""


@pytest.mark.slow
def test_models_run_from_python_print_no_mindspore_warning():
    proc = run_python(MODELS, {"GLOG_v": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [f"{name} True" for name in
                                        ("acmix_resnet_tiny", "SAMACmix", "WindowAttentionACmix",
                                         "swin_acmix_tiny dense")]
    noise = [line for line in proc.stderr.splitlines() if "WARNING" in line or "ANALYZER" in line]
    assert not noise, "\n".join(noise[:5])
