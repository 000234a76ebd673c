"""A small ACmix-ResNet exported to MindIR and loaded in a fresh process gives the same
logits with the default attention path (the AOT kernel on CPU, whose MindIR refers to the
cached library by absolute path). The graph-operator path that export.py forces
(attn_impl="halo"): test_export.py (logits) and test_infer_310.py (a fresh process)."""
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix.models import ACmixResNet
from mindspore_acmix.implementations import unavailable_reason

LOAD_AND_RUN = """
import sys
import mindspore as ms
import numpy as np
from mindspore import Tensor, nn
ms.set_device("CPU")
graph = nn.GraphCell(ms.load(sys.argv[1]))
np.save(sys.argv[3], graph(Tensor(np.load(sys.argv[2]))).asnumpy())
"""


@pytest.mark.slow
def test_mindir_loads_in_a_fresh_process(tmp_path):
    net = ACmixResNet([1, 1, 1, 1], k_att=3, head=2, num_classes=10)
    net.set_train(False)
    impl = net.layer1[0].conv2.attn_impl
    # on this CPU the default is the AOT kernel wherever it builds
    assert impl == ("aot" if unavailable_reason("attention") is None else "halo")
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    expected = net(Tensor(x)).asnumpy()
    ms.export(net, Tensor(x), file_name=str(tmp_path / "net"), file_format="MINDIR")
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_AND_RUN, str(tmp_path / "net.mindir"), str(tmp_path / "x.npy"),
         str(tmp_path / "out.npy")],
        cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, GLOG_v="3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(tmp_path / "out.npy")
    assert got.shape == (2, 10)
    err = float(np.abs(got - expected).max())
    assert err <= 1e-5 * max(1.0, float(np.abs(expected).max())), f"{impl}: max abs diff {err}"
