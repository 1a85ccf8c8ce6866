"""`python -m audiogen.doctor`: what this machine gives audiogen.

Prints the Python and TensorFlow versions, the devices TensorFlow sees, whether each compiled op
is built (or why not), and for each model the engine and precision it would use here.
"""
import argparse
import json
import os
import platform
import sys


def report():
    """The lines `python -m audiogen.doctor` prints."""
    import tensorflow as tf

    from audiogen.config import DEFAULTS, PRECISIONS
    from audiogen.kernels.dispatch import KERNELS_ENV, OP_NAMES, gpu_visible, op_status
    from audiogen.samplernn.sampler import STREAM_MIN_DIM, choose_engine

    gpus = tf.config.list_physical_devices("GPU")
    lines = [f"audiogen {_version()} on Python {platform.python_version()} ({sys.platform})",
             f"TensorFlow {tf.__version__} (built with CUDA: {tf.test.is_built_with_cuda()}), "
             f"Keras {_keras_version()}",
             "devices: " + ", ".join(d.name for d in tf.config.list_physical_devices()),
             f"GPUs: {len(gpus)}" + ("" if gpus else " (training and generation run on the CPU)"),
             f"compiled ops ({KERNELS_ENV}={os.environ.get(KERNELS_ENV, 'on')}):"]
    lines += [f"  {name}: {op_status(name)}" for name in OP_NAMES]
    small, large = STREAM_MIN_DIM // 2, DEFAULTS["samplernn"]["dim"]
    lines += [
        "SampleRNN generation engine: "
        f"dim {small}: {choose_engine(small)}, dim {large} (default.config.json): "
        f"{choose_engine(large)}",
        "MusicVAE LSTM steps: " + ("TensorFlow's ops (on the GPU)" if gpu_visible() else
                                   "the LstmCell op where built, else TensorFlow's ops"),
        f"precisions (config key 'precision'): {', '.join(PRECISIONS)}; "
        f"recommended here: {_recommended_precision(gpus)}",
        "train.py --strategy: default (one device: "
        f"{'GPU:0' if gpus else 'the CPU'}); mirrored ("
        f"{f'{len(gpus)} replicas, one per GPU' if len(gpus) > 1 else 'one device here'}); "
        f"multi_worker ({_cluster()})",
    ]
    return lines


def _cluster():
    """What `TF_CONFIG` says of the cluster (for `--strategy multi_worker`)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return "TF_CONFIG not set"
    try:
        config = json.loads(text)
        workers = sum(len(config["cluster"].get(job, [])) for job in ("chief", "worker"))
        task = config["task"]
        return f"TF_CONFIG: {workers} workers, this is {task['type']} {task['index']}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return "TF_CONFIG is set but is not a cluster description"


def _recommended_precision(gpus):
    if gpus:
        import tensorflow as tf
        details = tf.config.experimental.get_device_details(gpus[0])
        major = (details.get("compute_capability") or (0, 0))[0]
        return ("mixed_float16 (this GPU has tensor cores)" if major >= 7 else
                "float32 (this GPU has no tensor cores)")
    flags = _cpu_flags()
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        return "mixed_bfloat16 (this CPU has bfloat16 instructions)"
    return "float32 (this CPU has no bfloat16 instructions)"


def _cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.split(":", 1)[-1].split())


def _version():
    from audiogen import __version__
    return __version__


def _keras_version():
    import keras
    return keras.__version__


def main(argv=None):
    argparse.ArgumentParser(prog="python -m audiogen.doctor",
                            description=__doc__.split("\n\n")[0]).parse_args(argv)
    for line in report():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
