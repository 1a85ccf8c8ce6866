"""The one place that decides whether a compiled op is used.

A compiled op (`lstm_cell`, `stream_matmul`, `sample_frame`) runs only when all of these hold:

* the environment does not switch them off (`AUDIOGEN_KERNELS=off`);
* the graph being built is not compiled by XLA, which cannot run custom ops;
* the tensors it would read live on the CPU: the ops are registered for the CPU only, and a
  CPU-only op among GPU tensors would copy them to the host and back at every step;
* the products run in a type the op has (float32 or bfloat16: not float16);
* its library builds here (a C++ compiler and TensorFlow's headers; `audiogen.kernels.compiled`).

Model code asks `compiled_op(name, *tensors, dtype=...)` and uses TensorFlow's own operations
when it returns None; it never looks at devices or compilers itself.
"""
import os

import tensorflow as tf
# Tells whether the graph being built is compiled by XLA.
from tensorflow.python.ops import control_flow_util

from audiogen.kernels import compiled, lstm_cell, sample_frame, stream_matmul

KERNELS_ENV = "AUDIOGEN_KERNELS"
_MODULES = {"lstm_cell": lstm_cell, "sample_frame": sample_frame, "stream_matmul": stream_matmul}
OP_NAMES = tuple(sorted(_MODULES))
OP_DTYPES = (tf.float32, tf.bfloat16)  # the product types every op is built for


def kernels_enabled():
    """False when `AUDIOGEN_KERNELS` is `off` (or `0`, `false`, `no`)."""
    return os.environ.get(KERNELS_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def inside_xla():
    """True while building a function that XLA compiles."""
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def gpu_visible():
    """True when TensorFlow may place ops on a GPU. (Asks without starting TensorFlow's runtime,
    so thread settings can still be made afterwards.)"""
    return bool(tf.config.get_visible_devices("GPU"))


def on_cpu(*tensors):
    """True when every tensor (or variable) lives on the CPU. A tensor without a device (inside
    a function, before placement), or no tensor at all, means where TensorFlow places ops by
    default: on a GPU when one is visible."""
    if not tensors:
        return not gpu_visible()
    for tensor in tensors:
        device = getattr(tensor, "device", "") or ""
        if not device:
            if gpu_visible():
                return False
        elif tf.DeviceSpec.from_string(device).device_type != "CPU":
            return False
    return True


def compiled_op(name, *tensors, dtype=tf.float32):
    """The loaded op module `name` (one of `OP_NAMES`) where it may run for `tensors` with
    products in `dtype`, else None (then use TensorFlow's operations)."""
    if name not in _MODULES:
        raise ValueError(f"unknown compiled op {name!r}; expected one of {OP_NAMES}")
    if dtype not in OP_DTYPES or not kernels_enabled() or inside_xla() or not on_cpu(*tensors):
        return None
    return _MODULES[name].load()


def op_status(name):
    """One line about the op `name` for `audiogen.doctor`: off, built, or why it is not."""
    if not kernels_enabled():
        return f"off ({KERNELS_ENV}=off)"
    try:
        return f"built ({compiled.build(_MODULES[name].SOURCE)})"
    except RuntimeError as e:
        return f"unavailable: {str(e).splitlines()[0]}"
