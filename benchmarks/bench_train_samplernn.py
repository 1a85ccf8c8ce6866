"""SampleRNN training speed and quality on this machine, next to PRiSM SampleRNN's figures.

* `small` (dim 256, 2 GRU layers, frame sizes [16, 64]), batch 16, seq_len 512, on the demo
  piano audio (data/demo/audio, 16 kHz, 4 s pieces: the demo's 189 s are too few for one training
  and one validation batch of 16 pieces of 8 s):
  - pipeline only: windows per second from `make_audio_datasets`, without the model;
  - model only: the compiled train step on a fixed synthetic batch (median step time, the
    first, compiling step left out);
  - end to end: `model.fit` as train.py runs it (XLA, one compiled execution per batch of
    pieces), with validation bits/sample after 250 and 500 steps; s/step from the end of the
    first execution (it compiles the train step) to the end of the last, without `fit`'s setup
    and teardown (`fit_overhead_s` in the JSON).
* `default` (`default.config.json`: dim 1024, 4 GRU layers), batch 16, seq_len 1024: model
  only, a few steps each: float32 without XLA (TensorFlow graph, oneDNN kernels) and
  mixed_bfloat16 with XLA (and, not with --quick, the other two combinations).

The small-config runs are done in both precisions (`"precision"`: float32, and mixed_bfloat16 =
bfloat16 matrix products, float32 elsewhere), so the validation bits show what bfloat16 costs
(with --quick, end to end in mixed_bfloat16 only).

PRiSM's figures were measured on Bach piano audio in 8 s chunks, ours on the demo piano: the
validation bits are comparable in scale, not equal data. `--data_dir DIR --piece_dur 8` trains
on other audio (benchmarks/README.md: Bach pieces rendered to piano), and
`--end_to_end_only` runs only those training runs.

    .venv/bin/python benchmarks/bench_train_samplernn.py            # ~10 minutes
    .venv/bin/python benchmarks/bench_train_samplernn.py --quick    # ~4 minutes (250 steps)

Prints a table and writes benchmarks/results/bench_train_samplernn.json.
"""
import argparse
import math
import os
import statistics
import sys
import time

from common import (REPO, RESULTS_DIR, add_thread_args, fit_step_times, note_machine_state,
                    set_threads, write_results)

DATA_DIR = os.path.join(REPO, "data", "demo", "audio")
RESULTS = os.path.join(RESULTS_DIR, "bench_train_samplernn.json")
CONFIGS = {"small": os.path.join(REPO, "configs", "samplernn-small.config.json"),
           "default": os.path.join(REPO, "default.config.json")}
SAMPLE_RATE = 16000
BATCH = 16
# PRiSM SampleRNN on this 2-core CPU (issue "Speed"): seconds per step, val bits/sample.
PRISM = {"small": {"seq_len": 512, "s_per_step": 0.29, "val_bits": {250: 5.19, 500: 4.91}},
         "default": {"seq_len": 1024, "s_per_step": 5.65}}
TARGET_RATIO = 2.0
SHORT = {"float32": "fp32", "mixed_bfloat16": "bf16"}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="250 training steps instead of 500, fewer timed steps")
    p.add_argument("--data_dir", default=DATA_DIR,
                   help="audio for the end-to-end runs (PRiSM's figures: Bach piano)")
    p.add_argument("--piece_dur", type=float, default=4.0,
                   help="seconds per training piece in the end-to-end runs (PRiSM: 8 s chunks)")
    p.add_argument("--end_to_end_only", action="store_true",
                   help="only the small config's end-to-end runs (speed and validation bits)")
    add_thread_args(p)
    p.add_argument("--output", default=RESULTS, help="JSON results file")
    return p.parse_args(argv)


def load_config(name):
    from audiogen.config import load_config as load
    return load(CONFIGS[name])


def make_model(config, seq_len):
    from audiogen.samplernn.model import SampleRNN
    model = SampleRNN.from_run_config({**config, "seq_len": seq_len})
    model.build_for_batch(BATCH)
    return model


def compile_model(model, jit_compile, steps_per_execution=1):
    from audiogen.training.checkpoints import build_optimizer
    from audiogen.training.optimizers import FusedAdam
    optimizer = build_optimizer(FusedAdam(1e-3), model)
    model.compile(optimizer=optimizer, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)


def model_only(config, seq_len, jit_compile, steps):
    """Seconds per train step on a fixed synthetic batch (`steps` steps in one `fit` after a
    first one that compiles), and the first step's time."""
    import numpy as np
    import tensorflow as tf
    model = make_model(config, seq_len)
    compile_model(model, jit_compile)
    top = config["frame_sizes"][-1]
    x = np.random.default_rng(0).integers(0, config["q_levels"], [BATCH, seq_len + top])
    data = tf.data.Dataset.from_tensors((x.astype(np.int32), np.array(False))).repeat()
    durations = fit_step_times(model, data, steps + 1)
    per_step = statistics.median(durations[1:])
    return {"s_per_step": per_step, "samples_per_s": BATCH * seq_len / per_step,
            "first_step_s": durations[0], "step_s": [round(d, 4) for d in durations[1:]],
            "steps": steps, "jit_compile": jit_compile}


def small_end_to_end(config, total_steps, data_dir=DATA_DIR, piece_dur=4.0):
    """Train as train.py does; validation bits/sample every 250 steps; pipeline-only rate."""
    import keras
    from audiogen.data.audio_dataset import make_audio_datasets
    keras.utils.set_random_seed(0)       # the same initial weights and batches for each precision
    seq_len = config["seq_len"]
    data = make_audio_datasets(data_dir, sample_rate=SAMPLE_RATE, batch_size=BATCH,
                               seq_len=seq_len, top_frame_size=config["frame_sizes"][-1],
                               q_type=config["q_type"], q_levels=config["q_levels"],
                               piece_dur=piece_dur, num_val_batches=1)
    info = data.info
    train = data.train.repeat()

    # Whole passes from fresh iterators: decoding happens when a pass fills its shuffle buffer,
    # so timing windows after the first one of a pass would leave the decoding out.
    start, windows = time.perf_counter(), 0
    for _ in range(3):
        windows += sum(1 for _ in data.train)
    pipeline_sps = windows * BATCH * seq_len / (time.perf_counter() - start)

    model = make_model(config, seq_len)
    every = 250
    per_execution = math.gcd(info.windows_per_piece, every)
    compile_model(model, True, per_execution)
    row = {"train_pieces": int(info.num_train_pieces), "val_pieces": int(info.num_val_pieces),
           "windows_per_piece": int(info.windows_per_piece),
           "pipeline_samples_per_s": pipeline_sps, "steps_per_execution": per_execution,
           "val_bits": {}, "epoch_s": []}
    clock = []                                        # per fit: [[begin, end] per execution]

    class StepClock(keras.callbacks.Callback):
        """When each execution (`per_execution` steps) begins and ends."""
        def on_train_begin(self, logs=None):
            clock.append([])

        def on_train_batch_begin(self, batch, logs=None):
            clock[-1].append([time.perf_counter(), None])

        def on_train_batch_end(self, batch, logs=None):
            clock[-1][-1][1] = time.perf_counter()

    for epoch in range(total_steps // every):
        start = time.perf_counter()
        model.fit(train, steps_per_epoch=every, epochs=epoch + 1, initial_epoch=epoch, verbose=0,
                  callbacks=[StepClock()])
        row["epoch_s"].append(time.perf_counter() - start)
        bits = model.evaluate(data.validation, verbose=0, return_dict=True)["bits_per_sample"]
        row["val_bits"][(epoch + 1) * every] = float(bits)
        print(f"  small end to end, {config['precision']}: {(epoch + 1) * every} steps, "
              f"{row['epoch_s'][-1] / every:.3f} s/step with compiling, val {bits:.2f} "
              f"bits/sample", flush=True)
    # The steady rate: from the first execution's end (it compiles the train step) to the last
    # one's, input included, without `fit`'s setup and teardown, which train.py pays once per
    # run (one `fit`) and this loop once per 250 steps: `fit` can return long after its last
    # callback (`on_train_end`).
    first_begin, first_end = clock[0][0]
    row["first_execution_s"] = first_end - first_begin
    timed = [fit[-1][1] - (first_end if i == 0 else fit[0][0]) for i, fit in enumerate(clock)]
    row["fit_overhead_s"] = sum(row["epoch_s"]) - sum(fit[-1][1] - fit[0][0] for fit in clock)
    row["s_per_step"] = sum(timed) / (len(row["epoch_s"]) * every - per_execution)
    row["samples_per_s"] = BATCH * seq_len / row["s_per_step"]
    return row


def print_table(rows, data):
    head = (f"{'config':<8}{'run':<27}{'s/step':>8}{'samples/s':>11}{'PRiSM s':>9}{'xPRiSM':>8}"
            f"{'val bits':>24}{'PRiSM bits':>24}")
    print(head)
    print("-" * len(head))
    for r in rows:
        prism = PRISM[r["config"]]
        bits = r.get("val_bits", {})
        bits_s = " ".join(f"{k}:{v:.2f}" for k, v in bits.items())
        prism_bits = " ".join(f"{k}:{v:.2f}" for k, v in prism.get("val_bits", {}).items()
                              if k in bits)
        print(f"{r['config']:<8}{r['run']:<27}{r['s_per_step']:>8.3f}{r['samples_per_s']:>11.0f}"
              f"{prism['s_per_step']:>9.2f}{prism['s_per_step'] / r['s_per_step']:>8.2f}"
              f"{bits_s:>24}{prism_bits:>24}")
    print(f"batch {BATCH}; samples/s = batch x seq_len / s per step; xPRiSM = PRiSM s/step / ours "
          f"(target >= {TARGET_RATIO}); val bits after N steps (ours: {data}; PRiSM: Bach "
          f"piano, 8 s chunks); fp32 = float32, bf16 = mixed_bfloat16.")


def main(argv=None):
    args = parse_args(argv)
    threads = set_threads(args)
    start = time.perf_counter()
    machine_before = note_machine_state()
    small, default = load_config("small"), load_config("default")
    rows = []

    def add(row, config, run, precision):
        run = f"{run}, {SHORT[precision]}"
        rows.append({"config": config, "run": run, "precision": precision, **row})
        print(f"[{time.perf_counter() - start:5.0f} s] {config} {run}: "
              f"{row['s_per_step']:.3f} s/step, {row['samples_per_s']:.0f} samples/s", flush=True)

    steps = 5 if args.quick else 10
    for precision in () if args.end_to_end_only else SHORT:
        add(model_only({**small, "precision": precision}, 512, True, steps), "small",
            "model only, XLA", precision)
    # --quick trains end to end in mixed_bfloat16 only (`make bench` stays under 10 minutes).
    for precision in ("mixed_bfloat16",) if args.quick else SHORT:
        e2e = small_end_to_end({**small, "precision": precision}, 250 if args.quick else 500,
                               args.data_dir, args.piece_dur)
        add(e2e, "small", "end to end, XLA", precision)
    print(f"  pipeline only: {e2e['pipeline_samples_per_s']:.0f} samples/s")
    runs = [("float32", False), ("mixed_bfloat16", True)]
    if not args.quick:
        runs += [("float32", True), ("mixed_bfloat16", False)]
    for precision, jit in [] if args.end_to_end_only else runs:
        add(model_only({**default, "precision": precision}, 1024, jit, 2 if args.quick else 3),
            "default", "model only, " + ("XLA" if jit else "graph"), precision)
    print()
    print_table(rows, f"{args.data_dir}, {args.piece_dur:g} s pieces")
    write_results(args.output, "bench_train_samplernn", argv, start, machine_before, rows,
                  prism=PRISM, threads=threads, data_dir=args.data_dir,
                  piece_dur=args.piece_dur)
    return 0


if __name__ == "__main__":
    sys.exit(main())
