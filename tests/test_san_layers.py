"""SAN's SAM, SAN-ACmix's SAMACmix and SAN's operators (ops.san)."""
import pytest

from mindspore_acmix.layers import SAM, SAMACmix

from conftest import check_against, load_golden, official_state

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
