"""Building and loading the C++ TensorFlow ops of this package (`*.cc` beside this file).

Each op library is compiled on first use with `g++ -O3 -march=native` against the installed
TensorFlow's headers into `$AUDIOGEN_KERNEL_DIR` (default `$XDG_CACHE_HOME/audiogen/kernels` or
`~/.cache/audiogen/kernels`), keyed by the source and the headers beside it, TensorFlow's
version, the compiler and its flags, and the CPU. `load()` returns None, with a warning naming
the reason, when that is impossible; callers then use TensorFlow's own operations.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings

import tensorflow as tf

from audiogen.files import user_cache_dir

COMPILE_TIMEOUT_S = 600


def kernel_dir():
    """Where the built libraries are kept."""
    return os.environ.get("AUDIOGEN_KERNEL_DIR") or user_cache_dir("kernels")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def _compiler():
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def _sources(source):
    """The bytes of `source` and of the headers beside it (which it may include)."""
    directory = os.path.dirname(os.path.abspath(source))
    headers = sorted(f for f in os.listdir(directory) if f.endswith(".h"))
    paths = [source] + [os.path.join(directory, f) for f in headers]
    contents = []
    for path in paths:
        with open(path, "rb") as f:
            contents.append(f.read())
    return contents


def build(source):
    """Compile the op library of `source` (a `.cc` path) if it is not built yet; returns the
    library's path.

    Raises RuntimeError naming the problem (no compiler, or the compiler's errors). The library
    is written under a temporary name and renamed when complete, so a failed or interrupted
    build leaves nothing behind.
    """
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    flags = tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()
    key = hashlib.sha256(b"\0".join([*_sources(source), tf.__version__.encode(),
                                     compiler.encode(), " ".join(flags).encode(),
                                     _cpu_flags().encode()]))
    name = os.path.splitext(os.path.basename(source))[0]
    directory = kernel_dir()
    path = os.path.join(directory, f"{name}-{key.hexdigest()[:16]}.so")
    if os.path.exists(path):
        return path
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=directory)
    os.close(fd)
    command = [compiler, "-O3", "-march=native", "-shared", "-fPIC", source, "-o", tmp, *flags]
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                timeout=COMPILE_TIMEOUT_S, check=False)
        if result.returncode != 0:
            errors = "\n".join(result.stderr.strip().splitlines()[-20:])
            raise RuntimeError(f"compiling {source} failed (exit {result.returncode}):\n"
                               f"{' '.join(command)}\n{errors}")
        os.replace(tmp, path)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"compiling {source} took over {COMPILE_TIMEOUT_S} s") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load(source, op_name, fallback):
    """The op module of `source` (built on first use), or None with a RuntimeWarning naming
    `op_name`, the reason and the `fallback` callers use instead."""
    try:
        return tf.load_op_library(build(source))
    except (OSError, RuntimeError, tf.errors.OpError) as e:
        warnings.warn(f"audiogen: the {op_name} op is unavailable ({e}); falling back to "
                      f"{fallback}", RuntimeWarning, stacklevel=3)
        return None
