"""MusicVAE training speed on this machine, next to the PyTorch reference figures.

Two models at the sizes of the issue "Speed" (item 2):

* `flat-2bar`: 2 bars (32 steps), encoder bidirectional LSTM 512 x1, decoder LSTM 256 x2, z 256,
  embeddings 32, batch 64.
* `hier-16bar`: 16 bars (256 steps), encoder 512 x1, conductor 256 x2 over 16 subsequences,
  c 256, decoder 256 x2, z 256, embeddings 32, batch 32.

Each runs with teacher forcing (`tf`: constant schedule, rate 0) and with scheduled sampling
(`ss`: inverse_sigmoid, rate 1000: a step loop picks the inputs, then the teacher-forced pass
trains on them), in both precisions (`"precision"`: float32, and mixed_bfloat16 = bfloat16 LSTM
products; `--quick` runs scheduled sampling in mixed_bfloat16 only). For each the script compiles the train step as the CLI does (graph mode;
`--xla` for `jit_compile=True`; the first step is timed as "compile"), then times `--steps`
steps of `model.fit`, one by one; steps/s come from the median step time (robust to the other
jobs of a shared machine; the mean is in the JSON too):

* model only: a fixed synthetic random batch (no input pipeline);
* end to end: the real melodies of data/demo/midi/oneills from `make_melody_datasets` (its
  extraction cache is used; the 16-bar corpus is small, so the dataset is repeated);
* pipeline only: the same dataset iterated without the model.

Prints a table and writes benchmarks/results/bench_train_musicvae.json.

    .venv/bin/python benchmarks/bench_train_musicvae.py            # ~4 minutes (mostly compiling)
    .venv/bin/python benchmarks/bench_train_musicvae.py --quick    # ~3 minutes
    .venv/bin/python benchmarks/bench_train_musicvae.py --models flat-2bar --modes tf --steps 60
"""
import argparse
import os
import statistics
import sys
import time

from common import (REPO, RESULTS_DIR, add_thread_args, fit_step_times, note_machine_state,
                    set_threads, write_results)

DATA_DIR = os.path.join(REPO, "data", "demo", "midi", "oneills")
RESULTS = os.path.join(RESULTS_DIR, "bench_train_musicvae.json")

MODELS = {
    "flat-2bar": dict(slice_bar=2, batch_size=64, params=dict(
        z_size=256, use_hier=False,
        encoder_params={"embed_size": 32, "hidden_size": 512, "n_layers": 1},
        decoder_params={"embed_size": 32, "hidden_size": 256, "n_layers": 2})),
    "hier-16bar": dict(slice_bar=16, batch_size=32, params=dict(
        z_size=256, use_hier=True, n_subsequences=16, c_size=256,
        encoder_params={"embed_size": 32, "hidden_size": 512, "n_layers": 1},
        decoder_params={"embed_size": 32, "hidden_size": 256, "n_layers": 2},
        conductor_params={"hidden_size": 256, "n_layers": 2})),
}
MODES = {
    "tf": {"schedule": "constant", "rate": 0.0},           # teacher forcing
    "ss": {"schedule": "inverse_sigmoid", "rate": 1000},   # scheduled sampling
}
# PyTorch MusicVAE on this 2-core CPU (issue "Speed"), melodies/s; teacher forcing.
SHORT = {"float32": "fp32", "mixed_bfloat16": "bf16"}
PYTORCH_REFERENCE = {
    "flat-2bar": {"end_to_end": 160.0, "model_only": 210.0},
    "hier-16bar": {"end_to_end": 15.0, "model_only": None},
}
TARGET_RATIO = 1.5
# Timed steps per (model, mode) by default and with --quick: about 4 and 1.5 minutes in all.
DEFAULT_STEPS = {("flat-2bar", "tf"): 20, ("flat-2bar", "ss"): 8,
                 ("hier-16bar", "tf"): 4, ("hier-16bar", "ss"): 3}
QUICK_STEPS = {("flat-2bar", "tf"): 8, ("flat-2bar", "ss"): 4,
               ("hier-16bar", "tf"): 3, ("hier-16bar", "ss"): 2}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per model/mode and per input kind (default: per model, "
                        f"{DEFAULT_STEPS})")
    p.add_argument("--quick", action="store_true",
                   help=f"fewer steps ({QUICK_STEPS}); scheduled sampling in mixed_bfloat16 "
                        f"only and without an end-to-end run")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES),
                   help="tf: teacher forcing, ss: scheduled sampling")
    p.add_argument("--precisions", nargs="+", default=list(SHORT), choices=list(SHORT),
                   help="model precisions to run")
    p.add_argument("--xla", dest="jit_compile", action="store_true",
                   help="compile the train step with XLA (default: graph mode, as train.py)")
    p.add_argument("--no_end_to_end", dest="end_to_end", action="store_false",
                   help="model only (synthetic batches)")
    add_thread_args(p)
    p.add_argument("--output", default=RESULTS, help="JSON results file")
    return p.parse_args(argv)


def _timed(model, dataset, steps, batch_size):
    """Steps/s from the median step time of `steps` compiled steps (the median is robust to the
    other jobs of a shared machine; the mean is kept too)."""
    durations = fit_step_times(model, dataset, steps)
    median = statistics.median(durations)
    mean = sum(durations) / len(durations)
    return {"steps_per_s": 1.0 / median, "melodies_per_s": batch_size / median,
            "mean_steps_per_s": 1.0 / mean, "mean_melodies_per_s": batch_size / mean,
            "step_s": [round(d, 4) for d in durations], "steps": len(durations)}


def _pipeline_rate(dataset, batches, batch_size):
    it = iter(dataset)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def bench_one(name, mode, precision, args, steps):
    import keras
    import tensorflow as tf

    from audiogen.data.melody_dataset import make_melody_datasets
    from audiogen.midi.encoding import NUM_CLASSES, STEPS_PER_BAR
    from audiogen.musicvae.model import MusicVAE
    from audiogen.training.optimizers import FusedAdam

    spec = MODELS[name]
    batch, seq_len = spec["batch_size"], spec["slice_bar"] * STEPS_PER_BAR
    keras.utils.set_random_seed(0)
    model = MusicVAE(seq_len=seq_len, sampling_settings=MODES[mode], precision=precision,
                     **spec["params"])
    model.compile(optimizer=FusedAdam(1e-3), jit_compile=args.jit_compile)
    synthetic = tf.data.Dataset.from_tensors(tf.random.stateless_uniform(
        [batch, seq_len], seed=(1, 2), maxval=NUM_CLASSES, dtype=tf.int32)).repeat()

    start = time.perf_counter()
    compile_s = fit_step_times(model, synthetic, 1)[0]
    row = {"model": name, "mode": mode, "precision": precision, "batch_size": batch,
           "seq_len": seq_len, "sampling_settings": MODES[mode], "jit_compile": args.jit_compile,
           "compile_s": compile_s, "first_fit_s": time.perf_counter() - start,
           "parameters": int(sum(v.numpy().size for v in model.trainable_variables))}
    row["model_only"] = _timed(model, synthetic, steps, batch)

    ref = PYTORCH_REFERENCE[name]
    row["pytorch_melodies_per_s"] = ref
    row["ratio_model_only"] = (row["model_only"]["melodies_per_s"] / ref["model_only"]
                               if ref["model_only"] else None)
    if args.end_to_end and not (args.quick and mode == "ss"):
        data = make_melody_datasets(DATA_DIR, slice_bar=spec["slice_bar"], batch_size=batch,
                                    max_slices_per_file=8, num_workers=2)
        train = data.train.repeat()
        row["train_examples"] = data.info.train_examples
        row["pipeline_melodies_per_s"] = _pipeline_rate(train, 50, batch)
        row["end_to_end"] = _timed(model, train, steps, batch)
        row["ratio_end_to_end"] = row["end_to_end"]["melodies_per_s"] / ref["end_to_end"]
    return row


def print_table(rows):
    head = (f"{'model':<11}{'mode':<5}{'prec':<5}{'batch':>6}{'input':>10}{'steps/s':>9}"
            f"{'mel/s':>9}"
            f"{'pipe mel/s':>11}{'compile s':>10}{'PyTorch':>9}{'ratio':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        for kind, label in (("model_only", "synthetic"), ("end_to_end", "real")):
            if kind not in r:
                continue
            ref = r["pytorch_melodies_per_s"][kind]
            ratio = r.get(f"ratio_{kind}")
            pipe = r.get("pipeline_melodies_per_s") if kind == "end_to_end" else None
            compile_s = r["compile_s"] if kind == "model_only" else None
            print(f"{r['model']:<11}{r['mode']:<5}{SHORT[r['precision']]:<5}"
                  f"{r['batch_size']:>6}{label:>10}"
                  f"{r[kind]['steps_per_s']:>9.2f}{r[kind]['melodies_per_s']:>9.1f}"
                  f"{'' if pipe is None else f'{pipe:.0f}':>11}"
                  f"{'' if compile_s is None else f'{compile_s:.1f}':>10}"
                  f"{'' if ref is None or r['mode'] != 'tf' else f'{ref:.0f}':>9}"
                  f"{'' if ratio is None or r['mode'] != 'tf' else f'{ratio:.2f}':>7}")
    print(f"mode tf = teacher forcing, ss = scheduled sampling; prec bf16 = mixed_bfloat16 "
          f"(bfloat16 LSTM products); input synthetic = model only (a "
          f"fixed random batch), real = end to end on the demo melodies; steps/s from the median "
          f"step time; compile s = first step (trace and compile); PyTorch reference and ratio "
          f"for teacher forcing only (target ratio >= {TARGET_RATIO}).")


def main(argv=None):
    args = parse_args(argv)
    threads = set_threads(args)
    table = QUICK_STEPS if args.quick else DEFAULT_STEPS
    machine_before = note_machine_state()
    start = time.perf_counter()
    rows = []
    for name in args.models:
        for mode in args.modes:
            for precision in args.precisions:
                if args.quick and mode == "ss" and precision != "mixed_bfloat16":
                    continue
                steps = args.steps or table[(name, mode)]
                row = bench_one(name, mode, precision, args, steps)
                rows.append(row)
                print(f"[{time.perf_counter() - start:6.0f} s] {name} {mode} {SHORT[precision]}: "
                      f"{row['model_only']['melodies_per_s']:.1f} melodies/s model only"
                      + (f", {row['end_to_end']['melodies_per_s']:.1f} end to end"
                         if "end_to_end" in row else "")
                      + f", compile {row['compile_s']:.1f} s", flush=True)
    print()
    print_table(rows)
    write_results(args.output, "bench_train_musicvae", argv, start, machine_before, rows,
                  threads=threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
