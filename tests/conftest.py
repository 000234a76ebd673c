import os
import shlex
import subprocess
import sys

os.environ.setdefault("GLOG_v", "3")  # MindSpore's INFO/WARNING log lines drown pytest's output

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mindspore_acmix.convert import load_torch_state_dict  # noqa: E402
from mindspore_acmix import implementations  # noqa: E402
from mindspore_acmix.tools.golden import (deviation, golden_deviations,  # noqa: E402,F401
                                          load_golden, official_state, output_and_grads)


ms.set_device("CPU")
ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture
def pynative():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=ms.GRAPH_MODE)


def _available(kind, name):
    """name, or a skip with the reason where it is the CPU kernel that cannot run here (no
    compiler, non-CPU target)."""
    if name == implementations.KINDS[kind].cpu_only:
        reason = implementations.unavailable_reason(kind)
        if reason is not None:
            pytest.skip(f"{implementations.KINDS[kind].option}={name!r} unavailable: {reason}")
    return name


def _impl_params(kind):
    """The implementation names of `kind`; the plain "unfold" reference in the slow tier
    (each of its compiles costs seconds, and the fast tier meets it as the comparator)."""
    return [pytest.param(name, marks=pytest.mark.slow) if name == "unfold" else name
            for name in implementations.names(kind)]


@pytest.fixture(params=_impl_params("attention"))
def attn_impl(request):
    """Every registered local-attention implementation ("aot" skipped where it cannot run)."""
    return _available("attention", request.param)


@pytest.fixture(params=_impl_params("san"))
def san_impl(request):
    """Every registered implementation of SAN's operators ("aot" skipped where it cannot run)."""
    return _available("san", request.param)


def assert_close(ours, ref, rel, what, floor=1.0, scale=None):
    """max|ours - ref| <= rel * max(floor, max|scale|), scale defaulting to ref: with floor 1,
    the golden README's bound."""
    name, err, bound = deviation(ours, ref, rel, what, floor, scale)
    assert err <= bound, f"{name}: max abs diff {err:.3g} > {bound:.3g}"


def check_against(net, golden, state, rel, what, floor=1.0):
    """Load `state` (official names) into `net` and compare output and every gradient."""
    for name, err, bound in golden_deviations(net, golden, state, rel, what, floor):
        assert err <= bound, f"{name}: max abs diff {err:.3g} > {bound:.3g}"


def make_image_folder(root, classes=3, train_per_class=24, val_per_class=8, size=16, seed=0):
    """A small ImageFolder tree whose classes are learnable: class c is a bright bar in
    position c (rows, columns, diagonal ...) on noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = os.path.join(root, split, f"class_{c}")
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                img = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
                band = slice(size * c // classes, size * (c + 1) // classes)
                if c % 2 == 0:
                    img[band, :, :] = 220
                else:
                    img[:, band, :] = 220
                Image.fromarray(img).save(os.path.join(folder, f"{i:03d}.png"))
    return root


def write_config(path, **values):
    """A YAML recipe for the tiny ImageFolder runs of the tests."""
    import yaml

    cfg = dict(model="resnet_tiny", num_classes=3, dataset="imagefolder", image_size=16,
               eval_resize=16, crop_scale=[0.8, 1.0], hflip=0.0, batch_size=12, epochs=2,
               lr=0.05, lr_batch_size=12, warmup_epochs=0, weight_decay=1e-4,
               label_smoothing=0.0, num_workers=1, keep_checkpoints=2, log_interval=2,
               mean=[80.0, 80.0, 80.0], std=[80.0, 80.0, 80.0], device="CPU")
    cfg.update(values)
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    return str(path)


REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script_env(env=None):
    """The environment of a user's command line: GLOG_v=3 unless `env` says otherwise (a value
    of None removes the variable)."""
    env = {**os.environ, "GLOG_v": "3", "PYTHONUNBUFFERED": "1", **(env or {})}
    return {k: v for k, v in env.items() if v is not None}


def run_script(script, *args, cwd=None, env=None, timeout=600):
    """Run one of the repository's scripts in a fresh interpreter (a user's command line)."""
    return subprocess.run([sys.executable, os.path.join(REPO_DIR, script), *args],
                          capture_output=True, text=True, env=script_env(env), cwd=cwd,
                          timeout=timeout)


def error_line(proc):
    """The single 'error: ...' line of a failed script; asserts exit code 2, no traceback."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def doc_command(page, start):
    """The command line of a docs page (README.md, docs/x.md) that begins with `start`
    (continuation lines joined, the trailing comment dropped), as a list of words."""
    text = open(os.path.join(REPO_DIR, page), encoding="utf-8").read().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.strip().startswith(start))
    return shlex.split(line.split("  #")[0])


def run_words(words, cwd, env=None, timeout=600):
    """Run a documented command: leading NAME=VALUE words go to the environment, `python` is
    this interpreter."""
    env = script_env(env)
    while "=" in words[0]:
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if words[0] == "python":
        words[0] = sys.executable
    return subprocess.run(words, capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


# ---------------------------------------------------------------------- the shared run
RUN_EPOCHS = 3


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """make_image_folder's default tree (72 train / 24 val images, 3 classes), made once."""
    return make_image_folder(str(tmp_path_factory.mktemp("data") / "tiny"))


def run_config(path, folder, out, **values):
    """The recipe of the shared run: resnet_tiny for RUN_EPOCHS epochs with an EMA and
    gradient accumulation (6 micro-batches an epoch, 3 updates), so every resume and kill
    test that compares with it covers their state too."""
    return write_config(path, **{"data_dir": folder, "epochs": RUN_EPOCHS,
                                 "output_dir": str(out), "ema": True, "ema_decay": 0.5,
                                 "accumulate_steps": 2, **values})


@pytest.fixture(scope="session")
def trained_run(tiny_folder, tmp_path_factory):
    """(output dir, train.py's finished process) of one uninterrupted run_config run, shared
    by the training, resume, kill and checkpoint tests (each run costs a graph compile).
    Read only: copy it to change it."""
    tmp = tmp_path_factory.mktemp("trained")
    out = tmp / "run"
    proc = run_script("train.py", "--config", run_config(tmp / "c.yaml", tiny_folder, out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out, proc
