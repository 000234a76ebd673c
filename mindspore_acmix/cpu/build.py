"""Compiling the package's C++ AOT kernels (cpu/kernels) on first use, into a per-user cache.

The shared library is named after a hash of everything that determines the binary (the
source and the kernels' shared headers, the compiler's version, the flags and this CPU's
instruction-set flags, because it is built with -march=native), so editing the kernel,
changing compiler or sharing a home directory between different CPUs never picks up a stale
or illegal binary. It is written to a temporary file and renamed into place, so concurrent
first uses (several test or training processes) never see a half-written library.

Environment:
    ACMIX_KERNEL_CACHE: cache directory (default: the package's cache root's kernels/,
        ~/.cache/mindspore-acmix/kernels; see mindspore_acmix.cache).
    CXX: the C++ compiler (default g++, then c++, then clang++).
"""
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile

from ..cache import cache_root

KERNEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")
CXX_FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17",
             "-fno-math-errno", "-fno-trapping-math")


class KernelBuildError(RuntimeError):
    """The AOT kernel could not be built; the message says why, for a person."""


def cache_dir():
    """Where the compiled kernels go: the one place that decides it."""
    return os.environ.get("ACMIX_KERNEL_CACHE") or cache_root("kernels")


def find_compiler():
    for name in ([os.environ["CXX"]] if os.environ.get("CXX") else []) + ["g++", "c++", "clang++"]:
        path = shutil.which(name)
        if path:
            return path
    return None


def _cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor()


def _compiler_version(cxx):
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True,
                              timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelBuildError(f"cannot run the C++ compiler {cxx}: {exc}") from exc


def build_kernel(source_name):
    """Path of the shared library built from kernels/<source_name>, compiling it if needed.

    Raises KernelBuildError (with the compiler's output) when it cannot be built.
    """
    source = os.path.join(KERNEL_DIR, source_name)
    with open(source, "rb") as f:
        code = f.read()
    for header in sorted(n for n in os.listdir(KERNEL_DIR) if n.endswith(".h")):
        with open(os.path.join(KERNEL_DIR, header), "rb") as f:  # the kernels' shared loops
            code += b"\0" + f.read()
    cxx = find_compiler()
    if cxx is None:
        raise KernelBuildError("no C++ compiler found (set CXX, or install g++)")
    key = hashlib.sha256(b"\0".join([
        code, _compiler_version(cxx).encode(), " ".join(CXX_FLAGS).encode(),
        _cpu_flags().encode(), platform.machine().encode()])).hexdigest()[:16]
    stem = os.path.splitext(source_name)[0]
    directory = cache_dir()
    target = os.path.join(directory, f"{stem}-{key}.so")
    if os.path.isfile(target):
        return target
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}-", suffix=".so", dir=directory)
        os.close(fd)
    except OSError as exc:
        raise KernelBuildError(f"cannot write to the kernel cache {directory}: {exc} "
                               "(set ACMIX_KERNEL_CACHE to a writable directory)") from exc
    try:
        proc = subprocess.run([cxx, *CXX_FLAGS, "-o", tmp, source], capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            raise KernelBuildError(f"compiling {source} with {cxx} failed:\n{proc.stderr[-4000:]}")
        os.replace(tmp, target)  # atomic: a concurrent build just replaces it with the same file
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelBuildError(f"compiling {source} with {cxx} failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


_libraries = {}  # source name -> library path or KernelBuildError, once per process


def kernel_library(source_name):
    """build_kernel(source_name), attempted once per process: later calls return the same
    path or raise the same KernelBuildError."""
    if source_name not in _libraries:
        try:
            _libraries[source_name] = build_kernel(source_name)
        except KernelBuildError as exc:
            _libraries[source_name] = exc
    result = _libraries[source_name]
    if isinstance(result, KernelBuildError):
        raise KernelBuildError(str(result))
    return result


def kernel_unavailable_reason(source_name, device=None):
    """Why the CPU kernels of kernels/<source_name> cannot be used on `device` (default: the
    current device target), or None."""
    import mindspore as ms

    target = device or ms.get_context("device_target")
    if target != "CPU":
        return f"the AOT kernels run on CPU only and the device target is {target}"
    try:
        kernel_library(source_name)
    except KernelBuildError as exc:
        return str(exc)
    return None


def require_kernel(source_name, option):
    """The library of kernels/<source_name> for an implementation asked for by name
    (`option`='aot'); a RuntimeError saying why and what to use instead when it cannot run."""
    reason = kernel_unavailable_reason(source_name)
    if reason is not None:
        raise RuntimeError(f"{option}='aot' is unavailable: {reason}. "
                           f"Use {option}='halo' or 'auto'.")
    return kernel_library(source_name)


def aot_op(library, function, out_shape, out_dtype, geometry, bprop=None):
    """ops.Custom of `function` in `library` (func_type "aot") for one layer's `geometry`
    (a tuple of ints, which the kernel also receives as a constant int32 input: the plain AOT
    calling convention cannot read attributes).

    The geometry is also an attribute of the op: PyNative caches a Custom op's inferred
    output shape by its name, attributes and input shapes, not by its out_shape function, so
    without it a second layer of another geometry (say, stride) on inputs of the same shape
    would get the first one's output shape."""
    from mindspore import ops

    op = ops.Custom(f"{library}:{function}", out_shape=out_shape, out_dtype=out_dtype,
                    func_type="aot", bprop=bprop)
    op.add_prim_attr("acmix_geometry", ",".join(str(int(g)) for g in geometry))
    return op
