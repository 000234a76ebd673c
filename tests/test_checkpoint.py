"""Loading .ckpt files into a model by name: every failure is one clear message."""
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_acmix import create_model
from mindspore_acmix.checkpoint import CheckpointError, save_checkpoint_atomic


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "resnet26_10.ckpt"
    net = create_model("resnet26", num_classes=10)
    save_checkpoint_atomic(net, str(path), append_dict={"epoch": 3})
    return net, path


def test_round_trip_restores_every_parameter(saved):
    net, path = saved
    loaded = create_model("resnet26", num_classes=10, checkpoint_path=str(path))
    for a, b in zip(net.get_parameters(), loaded.get_parameters()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    assert not [f for f in os.listdir(path.parent) if ".tmp-" in f]


def test_training_state_in_the_file_is_tolerated(saved, tmp_path):
    """Optimizer slots (moments.<param>) and scalars (epoch, global_step) are not network
    parameters, but they are not foreign ones either."""
    net, _ = saved
    opt = ms.nn.Momentum(net.trainable_params(), 0.1, 0.9)
    path = tmp_path / "train.ckpt"
    entries = [{"name": p.name, "data": p} for p in list(net.get_parameters()) + list(opt.moments)]
    assert any(e["name"].startswith("moments.") for e in entries)
    save_checkpoint_atomic(entries, str(path), append_dict={"epoch": 1, "global_step": 5})
    create_model("resnet26", num_classes=10, checkpoint_path=str(path))


def test_missing_file():
    with pytest.raises(CheckpointError, match="checkpoint /no/such.ckpt does not exist"):
        create_model("resnet26", checkpoint_path="/no/such.ckpt")


def test_empty_file(tmp_path):
    (tmp_path / "e.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\)"):
        create_model("resnet26", checkpoint_path=str(tmp_path / "e.ckpt"))


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_file(saved, tmp_path, damage):
    _, path = saved
    data = path.read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(data[: len(data) // 2] if damage == "truncate" else os.urandom(4096))
    with pytest.raises(CheckpointError, match="is truncated or corrupt"):
        create_model("resnet26", num_classes=10, checkpoint_path=str(bad))


def test_other_class_count_names_parameter_and_shapes(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match=r"parameter fc.weight has shape \(10, 2048\) there "
                                              r"but \(1000, 2048\) here"):
        create_model("resnet26", checkpoint_path=str(path))


def test_other_architecture_lists_missing_parameters(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match=r"lacks \d+ parameters of this network: "
                                              r"layer1\.0\.conv2\.conv1\.bias"):
        create_model("acmix_resnet26", num_classes=10, checkpoint_path=str(path))


def test_extra_network_parameters_are_reported(tmp_path):
    net = create_model("resnet26", num_classes=10)
    path = tmp_path / "extra.ckpt"
    extra = {"name": "head2.weight", "data": Tensor(np.zeros((3, 3), np.float32))}
    save_checkpoint_atomic([{"name": p.name, "data": p} for p in net.get_parameters()] + [extra],
                           str(path))
    with pytest.raises(CheckpointError, match=r"holds 1 parameters this network does not have: "
                                              r"head2\.weight"):
        create_model("resnet26", num_classes=10, checkpoint_path=str(path))
