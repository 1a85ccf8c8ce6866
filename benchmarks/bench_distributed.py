"""One device against two replicas: the same training, its loss and its speed.

For each model, the same run (same seed, data order and global batch) trains `--steps` optimizer
steps:

* `one device`: `--strategy default` (Keras's `fit`);
* `2 replicas`: `MirroredStrategy` over two logical CPU devices of this machine, through
  `ReplicaLoop` (each replica gets half of every batch; on a GPU machine these would be GPUs);
* `2 workers` (with `--multi_worker`): two `train.py --strategy multi_worker` processes on
  127.0.0.1 (model initialisation differs: each run draws its own weights).

It reports the training loss over the last epoch and the validation loss after `--steps`, and
the seconds per step of the steps after the first execution (compilation excluded). On this
2-core CPU the replicas share the same two cores, so the time per step shows the cost of the
replicas' coordination, not a speed-up.

    .venv/bin/python benchmarks/bench_distributed.py [--steps 300] [--multi_worker]

Prints a table and writes benchmarks/results/bench_distributed.json.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

from common import REPO, RESULTS_DIR, note_machine_state, write_results

SAMPLERNN_CONFIG = {"seq_len": 256, "frame_sizes": [16, 64], "dim": 128, "num_rnn_layers": 2,
                    "emb_size": 64, "piece_dur": 2.0}
MUSICVAE_CONFIG = {"model": "musicvae", "batch_size": 32, "num_workers": 1,
                   "train_dir": os.path.join(REPO, "data", "demo", "midi", "oneills"),
                   "eval_fraction": 0.1, "z_size": 32,
                   "encoder_params": {"embed_size": 32, "hidden_size": 128},
                   "decoder_params": {"embed_size": 32, "hidden_size": 128, "n_layers": 2},
                   "advanced_interval": 100000}
STEP_LINE = re.compile(r"epoch (\d+) step (\d+): .*loss: ([0-9.]+)")
DONE_LINE = re.compile(r"epoch \d+ done: .*?(?:^| - )loss: ([0-9.]+).* val_loss: ([0-9.]+)")


def train_args(model, folder, steps):
    """train.py arguments of one run of `model` for `steps` steps (a tenth of them an epoch)."""
    config = os.path.join(folder, "run.config.json")
    per_epoch = max(steps // 10, 1)
    with open(config, "w") as f:
        if model == "samplernn":
            json.dump(SAMPLERNN_CONFIG, f)
        else:
            json.dump({**MUSICVAE_CONFIG, "num_steps": steps, "evaluate_interval": per_epoch,
                       "print_interval": 1}, f)
    args = ["--config_file", config, "--id", "run", "--logdir_root",
            os.path.join(folder, "logdir")]
    if model == "samplernn":
        args += ["--data_dir", os.path.join(REPO, "data", "demo", "audio"), "--sample_rate",
                 "16000", "--batch_size", "16", "--num_epochs", "10", "--steps_per_epoch",
                 str(per_epoch), "--generate", "false", "--jit_compile", "true"]
    return args


def worker(model, mode, folder, steps):
    """One run in this process: `mode` "default" or "mirrored" (two logical CPU devices)."""
    import tensorflow as tf
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from audiogen.cli.train import _flags, _run_options, _task, build_parser
    from audiogen.config import load_config
    from audiogen.training.distribution import Cluster
    from audiogen.training.run import prepare

    args = build_parser().parse_args(train_args(model, folder, steps))
    config = load_config(args.config_file)
    cluster = None
    if mode == "mirrored":
        devices = ("/cpu:0", "/cpu:1")
        cluster = Cluster(tf.distribute.MirroredStrategy(list(devices)), 0, 1, 2, True, devices)
    keras.utils.set_random_seed(0)
    prepare(_task(args, config), _run_options(args), cluster).execute(_flags(args, config))


def timed_lines(process):
    """`(seconds since start, line)` of a process's output."""
    start, lines = time.perf_counter(), []
    for line in process.stdout:
        lines.append((time.perf_counter() - start, line))
    return lines


def summary(lines, steps):
    """Last epoch's training loss, the last validation loss, seconds per step after the first
    logged execution."""
    marks = [(t, int(m.group(2))) for t, line in lines if (m := STEP_LINE.search(line))]
    done = [m for _, line in lines if (m := DONE_LINE.search(line))]
    if not marks or not done:
        raise RuntimeError("no step or epoch lines:\n" + "".join(l for _, l in lines[-30:]))
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return {"train_loss": float(done[-1].group(1)), "val_loss": float(done[-1].group(2)),
            "s_per_step": (t1 - t0) / max(s1 - s0, 1), "steps": s1}


def run_single(model, mode, steps):
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [sys.executable, __file__, "--worker", model, mode, folder, str(steps)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        lines = timed_lines(process)
        if process.wait():
            raise RuntimeError("".join(line for _, line in lines[-40:]))
        return summary(lines, steps)


def run_multi_worker(model, steps):
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    hosts = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    with tempfile.TemporaryDirectory() as folder:
        processes = []
        for index in range(2):
            tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
            env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
            processes.append(subprocess.Popen(
                [sys.executable, os.path.join(REPO, "train.py"),
                 *train_args(model, folder, steps), "--strategy", "multi_worker"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env))
        import threading
        outputs = [None, None]
        readers = [threading.Thread(target=lambda i=i: outputs.__setitem__(
            i, timed_lines(processes[i]))) for i in range(2)]
        for r in readers:
            r.start()
        for p, r in zip(processes, readers):
            p.wait()
            r.join()
        if any(p.returncode for p in processes):
            raise RuntimeError("".join(line for _, line in outputs[0][-40:]))
        return summary(outputs[0], steps)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per run")
    p.add_argument("--models", nargs="+", default=["samplernn", "musicvae"],
                   choices=["samplernn", "musicvae"])
    p.add_argument("--multi_worker", action="store_true", help="also two train.py workers")
    p.add_argument("--output", default=os.path.join(RESULTS_DIR, "bench_distributed.json"))
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        model, mode, folder, steps = args.worker
        return worker(model, mode, folder, int(steps))
    start, before = time.perf_counter(), note_machine_state()
    results = []
    modes = ["default", "mirrored"] + (["multi_worker"] if args.multi_worker else [])
    names = {"default": "one device", "mirrored": "2 replicas", "multi_worker": "2 workers"}
    print(f"{'model':10} {'run':12} {'steps':>6} {'train loss':>11} {'val loss':>9} "
          f"{'s/step':>8}")
    for model in args.models:
        for mode in modes:
            r = (run_multi_worker(model, args.steps) if mode == "multi_worker"
                 else run_single(model, mode, args.steps))
            results.append({"model": model, "run": names[mode], **r})
            print(f"{model:10} {names[mode]:12} {r['steps']:>6} {r['train_loss']:>11.4f} "
                  f"{r['val_loss']:>9.4f} {r['s_per_step']:>8.4f}", flush=True)
    write_results(args.output, "bench_distributed", None, start, before, results,
                  steps=args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
