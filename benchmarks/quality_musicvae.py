"""MusicVAE quality on held-out melodies: train a config with a time budget, evaluate its best
checkpoint on the held-out files.

For each config given, the script runs `train.py` as a user does (`--config_file CONFIG
--train_dir CORPUS`, held out by file: the config's `eval_fraction` of the corpus's files, chosen
by a hash of their paths, or the files of `--held_out LIST`), stops it after `--minutes` (SIGINT:
train.py saves the run and exits) unless it ends first (`num_steps`, `--steps`, or early
stopping), then restores the run's best checkpoint (lowest held-out loss, `<run>/best/`) and
evaluates it on the held-out slices, as training does (when the budget stopped the run, the
state it stopped in too, and the lower held-out loss of the two is reported):

* teacher-forced accuracy: the decoder's next-step argmax given the true previous steps,
  decoding from a posterior sample (`val_accuracy` in training);
* the same decoding from `z = mu` (`tf from mu`): what the decoder gets right without the
  posterior's noise, so the gap to the first tells how much that noise costs;
* sampled accuracy: argmax free-running decoding from `z = mu`, compared step by step
  (`val_sampled_accuracy`);
* the always-hold baseline: the accuracy of predicting "no event" (hold) at every step;
* the held-out loss (reconstruction + beta * KL above free bits, beta at the checkpoint's step),
  its reconstruction part (nats per melody) and KL (bits per melody).

Prints a table (one row per config) and writes benchmarks/results/quality_musicvae.json. A
quality benchmark, not a timed test: the hour-long runs want the machine to themselves.

The corpus: O'Neill's 1850 and Aird's Airs as MIDI, built by `bash scripts/build_corpora.sh
[OUT]` (needs abcmidi; OUT/folk/ holds oneills/ and airds/; default OUT: corpora/).

    .venv/bin/python benchmarks/quality_musicvae.py configs/musicvae-2bar-cpu.config.json \\
        --corpus corpora/folk --minutes 60
    .venv/bin/python benchmarks/quality_musicvae.py hier-16bar flat-16bar --minutes 60
    .venv/bin/python benchmarks/quality_musicvae.py configs/musicvae-tiny.config.json \\
        --steps 40 --set meters='"any"'                                       # a smoke test
"""
import argparse
import os
import signal
import subprocess
import sys
import threading
import time

from common import REPO, RESULTS_DIR, note_machine_state, write_results

DEFAULT_CORPUS = os.path.join(REPO, "corpora", "folk")
RESULTS = os.path.join(RESULTS_DIR, "quality_musicvae.json")
# Short names of the configs the quality targets are about.
CONFIGS = {name: os.path.join(REPO, "configs", f"musicvae-{name}-cpu.config.json")
           for name in ("2bar", "hier-16bar", "flat-16bar")}
# (heading, key of a result row, format)
COLUMNS = (("config", "config", "{}"), ("steps", "steps", "{}"),
           ("evaluated", "evaluated", "{}"), ("minutes", "minutes", "{:.1f}"),
           ("teacher-forced", "teacher_forced_accuracy", "{:.3f}"),
           ("tf from mu", "teacher_forced_accuracy_from_mu", "{:.3f}"),
           ("sampled", "sampled_accuracy", "{:.3f}"),
           ("always hold", "always_hold_accuracy", "{:.3f}"),
           ("held-out loss", "held_out_loss", "{:.2f}"), ("r_loss", "r_loss", "{:.2f}"),
           ("KL bits", "kl_bits", "{:.1f}"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("configs", nargs="+", metavar="CONFIG",
                   help=f"MusicVAE config files, or the names {', '.join(CONFIGS)} "
                        f"(configs/musicvae-NAME-cpu.config.json)")
    p.add_argument("--corpus", default=DEFAULT_CORPUS,
                   help="folder of MIDI files (searched recursively); build it with bash "
                        "scripts/build_corpora.sh")
    p.add_argument("--minutes", type=float, default=60.0,
                   help="time budget of each training run (train.py's whole process)")
    p.add_argument("--steps", type=int, default=None,
                   help="num_steps of each run (default: the config's)")
    p.add_argument("--held_out", default=None, metavar="LIST",
                   help="file of the corpus's relative paths to hold out, one a line "
                        "(default: the config's eval_fraction of its files)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="config override passed to train.py (repeatable)")
    p.add_argument("--init_from", default=None, metavar="RUN",
                   help="passed to train.py: each run starts from this run's weights (a "
                        "curriculum's second phase; its time is not counted in --minutes)")
    p.add_argument("--logdir_root", default=os.path.join(REPO, "logdir", "quality"),
                   help="the runs go to <logdir_root>/<config name>-<time>/")
    p.add_argument("--output", default=RESULTS, help="JSON results file")
    return p.parse_args(argv)


def config_path(name):
    path = CONFIGS.get(name, name)
    if not os.path.isfile(path):
        sys.exit(f"quality_musicvae: no config {path!r}: give a *.config.json file or one of "
                 f"{', '.join(CONFIGS)}")
    return os.path.abspath(path)


def config_name(path):
    return os.path.basename(path)[:-len(".config.json")]


# === Data ===

def data_dirs(corpus, held_out, folder):
    """`(train_dir, eval_dir)`: the corpus (eval_dir None: the config's eval_fraction holds out
    files), or two folders of links to the corpus's files split by the `held_out` list."""
    if held_out is None:
        return corpus, None
    from audiogen.midi.corpus import list_midi_files
    names = set(list_midi_files(corpus))
    with open(held_out, encoding="utf-8") as f:
        held = [line.strip() for line in f if line.strip()]
    unknown = [n for n in held if n not in names]
    if unknown or not held:
        sys.exit(f"quality_musicvae: {held_out}: {len(unknown)} of its {len(held)} lines are not "
                 f"MIDI files of {corpus} (first: {unknown[:3]}); expected relative paths "
                 f"such as oneills/0001.mid, one a line")
    for split, members in (("train", sorted(names - set(held))), ("eval", held)):
        for name in members:
            link = os.path.join(folder, split, name)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(corpus, name)), link)
    return os.path.join(folder, "train"), os.path.join(folder, "eval")


# === Training ===

def train(config, run_id, args, train_dir, eval_dir):
    """Run train.py on the config until it ends or the time budget is spent; returns
    `(exit code, minutes, stopped by the budget)`. Its output goes to the console and to
    `<run>/quality_train.log`."""
    command = [sys.executable, os.path.join(REPO, "train.py"), "--config_file", config,
               "--id", run_id, "--logdir_root", args.logdir_root, "--train_dir", train_dir]
    command += ["--set", "eval_dir=null"] if eval_dir is None else ["--eval_dir", eval_dir]
    if args.steps is not None:
        command += ["--num_steps", str(args.steps)]
    for item in args.set:
        command += ["--set", item]
    if args.init_from is not None:
        command += ["--init_from", args.init_from]
    print("$ " + " ".join(command), flush=True)
    run_dir = os.path.join(args.logdir_root, run_id)
    os.makedirs(run_dir, exist_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    budget = threading.Event()

    def stop():
        budget.set()
        print(f"\nquality_musicvae: {args.minutes:g} minutes are up: stopping train.py",
              flush=True)
        process.send_signal(signal.SIGINT)

    timer = threading.Timer(args.minutes * 60, stop)
    timer.start()
    try:
        with open(os.path.join(run_dir, "quality_train.log"), "w", encoding="utf-8") as log:
            for line in process.stdout:
                sys.stdout.write(line)
                log.write(line)
        code = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
    return code, (time.perf_counter() - start) / 60, budget.is_set()


def steps_trained(run_dir):
    """Optimizer steps the run did: its mid-epoch state's when it was stopped, else its newest
    checkpoint's number."""
    from audiogen.training.checkpoints import resolve_checkpoint, saved_counter
    state = stopped_state(run_dir)
    if state is not None:
        return state[1]
    try:
        return saved_counter(resolve_checkpoint(run_dir))
    except FileNotFoundError:
        return 0


def stopped_state(run_dir):
    """`(checkpoint, step)` of the state train.py saved when it was stopped, or None."""
    from audiogen.training.guards import interrupted_state
    state = interrupted_state(run_dir)
    return None if state is None else (state[0], state[1] + state[2])


# === Evaluation ===

def evaluate_run(run_dir):
    """The run's best checkpoint evaluated on its held-out slices (a dict of figures). When the
    time budget stopped the run, the state it stopped in is evaluated too (its last steps were
    never evaluated) and the one with the lower held-out loss is reported, the other beside
    it."""
    import numpy as np
    import tensorflow as tf

    from audiogen.config import load_run_config
    from audiogen.midi.encoding import always_hold_accuracy
    from audiogen.training.checkpoints import BEST_DIR, saved_counter
    from audiogen.training.musicvae_task import MusicVAETask

    config = load_run_config(run_dir)
    data = MusicVAETask(config).datasets()
    if data.validation is None:
        return {"error": "the run has no held-out data (eval_dir null and eval_fraction 0)"}
    held_out = np.concatenate([batch.numpy() for batch in data.validation])
    candidates = []
    best = tf.train.latest_checkpoint(os.path.join(run_dir, BEST_DIR))
    if best is not None:
        candidates.append(("best", best, saved_counter(best)))
    stopped = stopped_state(run_dir)
    if stopped is not None and (best is None or stopped[1] > candidates[0][2]):
        candidates.append(("stopped", *stopped))
    if not candidates:
        return {"error": f"{run_dir} has no checkpoint to evaluate"}
    figures = [evaluate_checkpoint(config, data.validation, *c) for c in candidates]
    chosen = min(figures, key=lambda f: f["held_out_loss"])
    row = {**chosen, "evaluated": f"{chosen['checkpoint_kind']} {chosen['step']}",
           "held_out_slices": int(len(held_out)),
           "always_hold_accuracy": always_hold_accuracy(held_out),
           "data_summary": data.summary}
    row["evaluations"] = figures
    return row


def evaluate_checkpoint(config, validation, kind, checkpoint, step):
    """Held-out figures of one checkpoint; the loss weighs the KL with the beta of its step,
    as training did."""
    from audiogen.training.optimizers import FusedAdam
    from audiogen.training.trained import model_from_config, restore_weights

    model = restore_weights(model_from_config(config), checkpoint)
    model.compile(optimizer=FusedAdam(config["learning_rate"]), jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(step)
    start = time.perf_counter()
    logs = model.evaluate(validation, verbose=0, return_dict=True)
    figures = {"checkpoint_kind": kind, "checkpoint": checkpoint, "step": int(step),
               "teacher_forced_accuracy": float(logs["accuracy"]),
               "sampled_accuracy": float(logs["sampled_accuracy"]),
               "held_out_loss": float(logs["loss"]), "r_loss": float(logs["r_loss"]),
               "kl_bits": float(logs["kl_bits"]), "beta": float(logs["beta"]),
               "evaluation_s": round(time.perf_counter() - start, 1)}
    figures["teacher_forced_accuracy_from_mu"] = accuracy_from_mu(model, validation)
    print(f"{kind} checkpoint, step {step}: " + ", ".join(
        f"{k} {v:.4f}" for k, v in figures.items() if isinstance(v, float)), flush=True)
    return figures


def accuracy_from_mu(model, validation):
    """Teacher-forced accuracy on the held-out slices decoding from `z = mu` (the model's
    `call`)."""
    import tensorflow as tf

    predict = tf.function(lambda x: tf.argmax(model(x), axis=-1, output_type=tf.int32))
    hits = total = 0
    for batch in validation:
        x = tf.cast(batch, tf.int32)
        hits += int(tf.reduce_sum(tf.cast(tf.equal(predict(x), x), tf.int32)))
        total += int(tf.size(x))
    return hits / total


# === Report ===

def print_table(rows):
    print("\n" + " | ".join(name for name, _, _ in COLUMNS))
    print("|".join("---" for _ in COLUMNS))
    for row in rows:
        cells = ["-" if row.get(key) is None else form.format(row[key])
                 for _, key, form in COLUMNS]
        print(" | ".join(cells) + (f"   ({row['error']})" if "error" in row else ""))


def run_one(path, args, stamp):
    name = config_name(path)
    run_id = f"{name}-{stamp}"
    run_dir = os.path.join(args.logdir_root, run_id)
    train_dir, eval_dir = data_dirs(os.path.abspath(args.corpus), args.held_out,
                                    os.path.join(run_dir, "data"))
    code, minutes, out_of_time = train(path, run_id, args, train_dir, eval_dir)
    row = {"config": name, "config_file": os.path.relpath(path, REPO), "run_dir": run_dir,
           "train_exit_code": code, "minutes": round(minutes, 2),
           "stopped_by_time_budget": out_of_time}
    if code != 0 and not out_of_time:
        row["error"] = f"train.py failed (exit {code}); see {run_dir}/quality_train.log"
        return row
    row["steps"] = steps_trained(run_dir)
    row.update(evaluate_run(run_dir))
    return row


def main(argv=None):
    args = parse_args(argv)
    configs = [config_path(c) for c in args.configs]
    if not os.path.isdir(args.corpus):
        sys.exit(f"quality_musicvae: no corpus folder {args.corpus}: build it with `bash "
                 f"scripts/build_corpora.sh [OUT]` (then OUT/folk), or pass --corpus DIR")
    start = time.perf_counter()
    machine_before = note_machine_state()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = [run_one(path, args, stamp) for path in configs]
    print_table(rows)
    write_results(args.output, "quality_musicvae", argv, start, machine_before, rows,
                  corpus=os.path.abspath(args.corpus), minutes_budget=args.minutes,
                  held_out_list=args.held_out, init_from=args.init_from)
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
