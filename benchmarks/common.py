"""Shared by the benchmark scripts: the repository on `sys.path`, the JSON results file, and
per-step timing of `model.fit`."""
import json
import os
import platform
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


def write_results(path, name, argv, start, load_before, rows, **extra):
    """Write the results of benchmark `name` (with the machine's facts) as JSON to `path`."""
    result = {"benchmark": name, "argv": sys.argv[1:] if argv is None else list(argv),
              "tensorflow": version("tensorflow-cpu"), "cpu_count": os.cpu_count(),
              "platform": platform.platform(), "load_average_before": load_before,
              "load_average_after": load_average(), "total_s": time.perf_counter() - start,
              **extra, "results": rows}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(f"load average before/after: {load_before} / {result['load_average_after']}; "
          f"total {result['total_s']:.0f} s; results: {path}")
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
