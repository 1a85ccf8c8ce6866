"""Shared by the benchmark scripts: the repository on `sys.path`, the JSON results file,
TensorFlow's thread settings, and per-step timing of `model.fit`."""
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
RESULTS_DIR = os.path.join(REPO, "benchmarks", "results")


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def seconds(fn):
    """Wall time of `fn()`."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine_state():
    """The load average and this machine's speed right now, to read the other figures against.

    `sgemm_gflops`: float32 1024 x 1024 matrix products with numpy on all cores (best of 5);
    `copy_gb_s`: bytes read plus written per second copying a 256 MiB array (best of 5);
    `glibc_tunables`: the process's `GLIBC_TUNABLES` (malloc settings change some figures). Shared
    machines have slow spells, and figures taken in different states do not compare
    (benchmarks/README.md, "The machine").
    """
    import numpy as np

    def best(fn, reps=5):
        return min(seconds(fn) for _ in range(reps))

    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    gemm_s = best(lambda: [a @ a for _ in range(8)])
    src = np.ones(64 * 2**20, np.float32)
    dst = np.empty_like(src)
    copy_s = best(lambda: np.copyto(dst, src))
    return {"load_average": load_average(),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
            "sgemm_gflops": round(8 * 2 * 1024**3 / gemm_s / 1e9, 1),
            "copy_gb_s": round(2 * src.nbytes / copy_s / 1e9, 1)}


def note_machine_state():
    """`machine_state()`, printed."""
    state = machine_state()
    print(f"machine now: {describe_machine_state(state)}", flush=True)
    return state


def describe_machine_state(state):
    text = (f"load {state['load_average']}, sgemm {state['sgemm_gflops']} GFLOP/s, "
            f"memory copy {state['copy_gb_s']} GB/s")
    if state.get("glibc_tunables"):     # e.g. huge-page malloc: glibc.malloc.hugetlb=1
        text += f", GLIBC_TUNABLES={state['glibc_tunables']}"
    return text


def add_thread_args(parser):
    """`--intra_op` / `--inter_op`: TensorFlow's thread pools (see `set_threads`)."""
    parser.add_argument("--intra_op", type=int, default=0,
                        help="tf.config.threading intra-op threads (0: TensorFlow's choice)")
    parser.add_argument("--inter_op", type=int, default=0,
                        help="tf.config.threading inter-op threads (0: TensorFlow's choice)")


def set_threads(args):
    """Apply `add_thread_args`' settings (before TensorFlow's first op); returns the settings
    in effect, for the results file."""
    import tensorflow as tf
    if args.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def cell_in_subprocess(cmd, label):
    """Run one benchmark cell `cmd` in its own process; the JSON of its last output line.
    RuntimeError naming `label` (with the end of the cell's stderr) when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"benchmark cell {label} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_results(path, name, argv, start, machine_before, rows, **extra):
    """Write the results of benchmark `name` (with the machine's facts and its state before, from
    `machine_state()`, and now) as JSON to `path`."""
    machine_after = machine_state()
    result = {"benchmark": name, "argv": sys.argv[1:] if argv is None else list(argv),
              "tensorflow": version("tensorflow-cpu"), "cpu_count": os.cpu_count(),
              "platform": platform.platform(), "machine_before": machine_before,
              "machine_after": machine_after, "total_s": time.perf_counter() - start,
              **extra, "results": rows}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(f"machine before: {describe_machine_state(machine_before)}")
    print(f"machine after:  {describe_machine_state(machine_after)}")
    print(f"total {result['total_s']:.0f} s; results: {path}")
    return result


def fit_step_times(model, dataset, steps):
    """Run `steps` training steps in one `model.fit`; returns the wall time of each step (from
    the start of its batch, input included, to its end). One `fit` call: a second call could
    retrace and recompile the train function, which would be timed as steps."""
    import keras

    begin, end = [], []

    class StepTimes(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            begin.append(time.perf_counter())

        def on_train_batch_end(self, batch, logs=None):
            end.append(time.perf_counter())

    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[StepTimes()])
    return [e - b for b, e in zip(begin, end)]
