"""`pip install .` (not editable): the wheel built from a clean copy of the sources, installed
into a fresh virtual environment and used from another directory, compiles and runs every
C++ kernel of the package (their sources and headers must be in the wheel)."""
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
import zipfile

import pytest

from conftest import REPO_DIR

# what a clean clone holds besides the package and its build files is not needed to build
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info",
                                     "__pycache__", "outputs", "tests", "benchmarks",
                                     "ascend310_infer", "rank_*")

# run in the fresh environment, from an empty directory: every kernel source the wheel holds
# compiles (into an empty cache) and its layer matches the graph-operator formulation
USE = textwrap.dedent("""
    import os, sys
    import numpy as np
    import mindspore as ms
    from mindspore import Tensor
    ms.set_device("CPU")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    import mindspore_acmix
    from mindspore_acmix.layers import ACmix
    from mindspore_acmix.layers.conv import SameConv2d
    from mindspore_acmix.layers.san import SAM
    root = os.path.dirname(mindspore_acmix.__file__)
    assert root.startswith(sys.prefix), root
    sources = sorted(f for _, _, files in os.walk(root) for f in files if f.endswith(".cc"))
    x = Tensor(np.random.default_rng(0).standard_normal((1, 8, 9, 9)).astype(np.float32))

    def pair(build, fast, reference):
        a, b = build(fast), build(reference)
        ms.load_param_into_net(b, {p.name: p for p in a.get_parameters()})
        return float(np.abs(a(x).asnumpy() - b(x).asnumpy()).max())

    diffs = {
        "attention": pair(lambda i: ACmix(8, 8, kernel_att=3, head=2, attn_impl=i,
                                          conv_impl="native"), "aot", "unfold"),
        "conv_taps": pair(lambda i: SameConv2d(8, 8, 3, impl=i), "matmul", "native"),
        "san": pair(lambda i: SAM(1, 8, 2, 8, 4, kernel_size=3, san_impl=i,
                                  conv_impl="native"), "aot", "unfold"),
    }
    built = sorted(f for f in os.listdir(os.environ["ACMIX_KERNEL_CACHE"]) if f.endswith(".so"))
    print(sources, built, diffs)
    assert len(built) == len(sources) >= 3, (sources, built)
    assert max(diffs.values()) < 1e-4, diffs
    print("OK")
""")


@pytest.mark.slow
def test_the_installed_wheel_builds_and_runs_every_kernel(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO_DIR, src, ignore=NOT_SOURCES)
    # the venv's setuptools (no download): the build a user's `pip install .` runs
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", str(src), "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("mindspore_acmix-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".h") for n in names) and any(n.endswith(".cc") for n in names)

    # a fresh environment that sees MindSpore and the other dependencies through a path
    # entry (not this checkout's editable install, whose .pth files are not processed)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True,
                             text=True).stdout.strip()
    deps = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
            if os.path.isdir(os.path.join(p, "mindspore"))]
    with open(os.path.join(purelib, "dependencies.pth"), "w", encoding="utf-8") as fh:
        fh.write(deps[0] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                    "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(GLOG_v="3", ACMIX_KERNEL_CACHE=str(tmp_path / "kernels"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([python, "-c", USE], capture_output=True, text=True, cwd=elsewhere,
                          env=env, timeout=600)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr[-3000:]
