"""The preflight (mindspore_acmix/tools/preflight.py, docs/preflight.md) as CI runs it:
`--device CPU`, from another directory, every check passing with figures that could fail."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_DIR, script_env


def preflight(tmp_path, *args, timeout=900):
    env = script_env({"PYTHONPATH": REPO_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")})
    return subprocess.run([sys.executable, "-m", "mindspore_acmix.tools.preflight", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=timeout)


# train_step and digits are the training paths that test_training.py and test_first_hour.py
# run; here they would add about 3 CPU-minutes of compilation and training (measured on the
# 2-core AMD EPYC host), so CI runs the other checks. The full run: docs/preflight.md.
CI_CHECKS = "golden,amp_o2,export,benchmark"


@pytest.mark.slow
def test_preflight_on_cpu_passes(tmp_path):
    proc = preflight(tmp_path, "--device", "CPU", "--checks", CI_CHECKS, "--json", "out.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads((tmp_path / "out.json").read_text())
    checks = report["checks"]
    assert report["passed"] and list(checks) == CI_CHECKS.split(",")
    assert all(checks[name]["passed"] for name in checks)
    # golden: the C++ kernels on CPU, within the README's bound
    used = checks["golden"]["implementations"]
    assert used["acmix_in8_out16_h2_k5"]["attention"] == ["aot"]
    assert used["san_sam_pair_c32"]["san"] == ["aot"]
    assert max(checks["golden"]["worst_error_over_bound"].values()) <= 1.0
    dtypes = checks["amp_o2"]["swin_acmix"]
    assert set(dtypes["Softmax"]) == set(dtypes["LayerNorm"]) == {"Float32"}
    assert dtypes["MatMul"].get("Float16") and set(dtypes["Log"]) == {"Float32"}
    assert checks["export"]["max_abs_difference"] <= 1e-5
    assert checks["benchmark"]["acmix_over_conv3x3"] > 0
    assert "4/4 checks passed" in proc.stdout


def test_an_unknown_check_is_a_usage_error(tmp_path):
    proc = preflight(tmp_path, "--device", "CPU", "--checks", "golden,warp", timeout=120)
    assert proc.returncode == 2 and "unknown check(s) warp" in proc.stderr
