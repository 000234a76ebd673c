"""What every benchmark shares: MindSpore's setup, timing by turns, peak memory, the machine
record, JSON output and the call of a probe in a fresh process (benchmarks/probe.py).

Timing: the variants of one measurement take turns within each repetition, so load from
other processes on a shared machine hits all of them alike; the figure is the median of
the timed repetitions after untimed warm-ups (the first of which compiles the graph).
Ratios are taken between medians of the same run.

Peak memory: the kernel's high-water mark of resident memory (VmHWM), reset through
/proc/self/clear_refs before the measured part, minus VmRSS at that point.
"""
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = os.path.join(ROOT, "benchmarks", "probe.py")
PROBE_PREFIX = "PROBE_JSON "
os.environ.setdefault("GLOG_v", "3")


def ms_setup():
    import mindspore as ms
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    return ms


def shape_key(channels, size):
    return f"{channels}@{size}x{size}"


def time_turns(steps, repeat, warmup):
    """{name: [seconds]}: the steps take turns in each repetition (see the module docstring)."""
    times = {name: [] for name in steps}
    for rep in range(warmup + repeat):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            if rep >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------- memory ------------

def status_mb():
    """{"VmRSS": MB, "VmHWM": MB} of this process."""
    out = {}
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) / 1024.0
    return out


def reset_peak():
    """Reset the high-water mark to the current resident size; return that size (MB)."""
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
        f.write("5")
    return status_mb()["VmRSS"]


def peak_growth(before):
    """MB the high-water mark rose above `before` (reset_peak's value)."""
    return status_mb()["VmHWM"] - before


# ---------------------------------------------------------------- probes ------------

class ProbeFailed(RuntimeError):
    """A probe process exited without its result (crashed, killed or out of time)."""


def run_probe(argv, *, cwd=ROOT, env=None, timeout=None, threads=None):
    """Run `python benchmarks/probe.py <argv>` in a fresh process and return its result (the
    JSON it printed after PROBE_PREFIX). A fresh process per probe because MindSpore's memory
    pool keeps what every compiled graph allocated until the process exits."""
    env = dict(os.environ if env is None else env)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, PROBE] + [str(a) for a in argv]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ProbeFailed(f"not done within {timeout} s") from exc
    for line in proc.stdout.splitlines():
        if line.startswith(PROBE_PREFIX):
            return json.loads(line[len(PROBE_PREFIX):])
    raise ProbeFailed(f"failed (rc {proc.returncode}): {proc.stderr.strip()[-2000:]}")


def print_probe_result(result):
    print(PROBE_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------- output ------------

def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)


def machine_info(threads):
    load = os.getloadavg()
    return {"platform": platform.platform(), "processor": _cpu_model(), "cpus": os.cpu_count(),
            "threads": threads, "loadavg_start": [round(v, 2) for v in load],
            "python": platform.python_version(), "mindspore": _version("mindspore"),
            "torch": _version("torch")}


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False
