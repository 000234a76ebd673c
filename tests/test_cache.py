"""One cache root (issue 26): the digits data and the compiled kernels live under
$XDG_CACHE_HOME/mindspore-acmix (else ~/.cache/mindspore-acmix)."""
import os

from mindspore_acmix.cache import cache_root
from mindspore_acmix.data import digit_canvases, digits
from mindspore_acmix.cpu import build


def test_data_and_kernels_share_one_root_that_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("ACMIX_KERNEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = str(tmp_path / "xdg" / "mindspore-acmix")
    assert cache_root() == root
    assert digits.default_root() == os.path.join(root, f"digits-{digits.VERSION}")
    assert digit_canvases.default_root() == os.path.join(root, "digit-canvases-v1")
    assert build.cache_dir() == os.path.join(root, "kernels")

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home_root = tmp_path / "home" / ".cache" / "mindspore-acmix"
    assert cache_root("kernels") == str(home_root / "kernels")
    assert build.cache_dir() == cache_root("kernels")
    assert not (tmp_path / "home").exists(), "asking for the path creates nothing"

    monkeypatch.setenv("ACMIX_KERNEL_CACHE", str(tmp_path / "elsewhere"))
    assert build.cache_dir() == str(tmp_path / "elsewhere")
