"""The benchmarks' own machinery (benchmarks/): what they count and how they report, not how
fast anything runs."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks import bench_acmix, common, graphs, models, probe  # noqa: E402

MATMULS = textwrap.dedent("""
    import numpy as np
    import mindspore as ms
    from mindspore import Tensor, ops

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)


    @ms.jit
    def f(a, b, c, d):
        return ops.matmul(a, b).sum() + ops.BatchMatMul(transpose_a=True)(c, d).sum()


    ones = lambda *shape: Tensor(np.ones(shape, np.float32))
    print(f(ones(3, 4), ones(4, 5), ones(2, 4, 3), ones(2, 4, 5)))
""")


def test_compiled_graph_counts_read_mindspores_saved_graphs(tmp_path):
    script = tmp_path / "matmuls.py"
    script.write_text(MATMULS)
    folder = tmp_path / "graphs"
    env = dict(os.environ, GLOG_v="3", MS_DEV_SAVE_GRAPHS="1",
               MS_DEV_SAVE_GRAPHS_PATH=str(folder))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # (3x4)(4x5): 3*5 outputs of 4 terms; (2, 4x3)^T (2, 4x5): 2*3*5 outputs of 4 terms
    assert graphs.count_ir_macs(str(folder)) == 3 * 5 * 4 + 2 * 3 * 5 * 4
    ops = graphs.count_ir_ops(str(folder))
    assert ops["MatMul"] == 1 and ops["BatchMatMul"] == 1
    assert not set(ops) & graphs.BOOKKEEPING_OPS


def test_halo_forward_does_at_most_three_times_the_windows_work():
    """Issue 24's goal, through the same probe process the layer benchmark runs."""
    ratio = graphs.macs_over_window("acmix:halo", 16, 12, 1, 1, 7, 16)
    assert ratio is not None and 1.0 <= ratio <= 3.0


def test_window_macs():
    # 2 * k^2 * width * out_h * out_w per image; stride 2 rounds the output size up
    assert graphs.window_macs(7, 64, 56, 1, 2) == 2 * 49 * 64 * 56 * 56 * 2
    assert graphs.window_macs(3, 8, 7, 2, 1) == 2 * 9 * 8 * 4 * 4


def test_peak_memory_growth_sees_a_new_allocation():
    before = common.reset_peak()
    block = np.ones(200 * 2 ** 20 // 8)  # 200 MB, written so that it is resident
    assert common.peak_growth(before) >= 190
    del block


def test_variants_take_turns_and_warmups_are_not_timed():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    times = common.time_turns(steps, repeat=2, warmup=1)
    assert calls == ["a", "b"] * 3
    assert {name: len(t) for name, t in times.items()} == {"a": 2, "b": 2}


def test_dense_mode_ratios_and_a_failed_probe(monkeypatch):
    results = {"resnet50": {"peak_mb": 2000.0, "step_s": 10.0, "step_cpu_s": 20.0},
               "acmix_resnet50:halo": {"peak_mb": 10000.0, "step_s": 60.0, "step_cpu_s": 30.0},
               "acmix_resnet50:aot": None}

    def fake_probe(argv, **_):
        result = results[argv[argv.index("--variant") + 1]]
        if result is None:
            raise common.ProbeFailed("not done within 1 s")
        return result

    monkeypatch.setattr(models, "run_probe", fake_probe)
    args = bench_acmix.parser().parse_args(["--mode", "dense", "--batch", "2", "--image", "512"])
    out = models.dense_mode(args)
    assert out["halo_over_resnet50_mem"] == pytest.approx(5.0)
    assert out["halo_over_resnet50_time"] == pytest.approx(6.0)
    assert out["halo_over_resnet50_cpu_time"] == pytest.approx(1.5)
    assert "not done" in out["variants"]["acmix_resnet50:aot"]["error"]
    assert "aot_over_resnet50_mem" not in out and "halo_over_aot_mem" not in out


@pytest.mark.parametrize("main, argv, message", [
    (bench_acmix.main, ["--mode", "dense", "--impls", "resnet50,bogus"], "bogus"),
    (probe.main, ["dense", "--variant", "bogus"], "bogus"),
    (probe.main, ["memory", "--variant", "conv", "--shape", "64x56"], "CHANNELS@SIZE"),
    (probe.main, ["memory", "--shape", "64@56"], "--variant"),
])
def test_wrong_command_lines_exit_2_naming_the_problem(main, argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err
