"""SampleRNN generation speed on this machine, next to PRiSM SampleRNN and the math floor.

For the small config (dim 256, 2 GRU layers, frame sizes [16, 64]) and `default.config.json`
(dim 1024, 4 GRU layers), with num_seqs 1, 4 and 16, each cell runs in its own process (so its
peak RSS is its own) and reports:

* generation: `audiogen.samplernn.sampler.generate` (the path `generate.py` uses), timed after a
  first call that compiles it (steady state, as PRiSM's figures are), with the groups of
  sequences and the threads `generate.py` picks (`groups`: with the XLA engine one per core,
  each op on one thread; with the stream engine one batch, one op at a time; `--groups 1` for
  one batch on TensorFlow's default threads); the floor runs with the same threads;
* floor: the model's dense/RNN math alone for the same number of steps, in one compiled loop
  with the same matmul shapes in generation's order (every tier's RNN step, input and
  upsampling matmuls at its frame rate, the sample-level MLP's dim x dim and output layers at
  every sample), no sampling, no lookups (with several groups, each group's math at once, as
  generation runs them); `floor ratio` = generation time / floor time (target <= 1.5).
  Generation and floor are timed alternately `--repeats` times and the fastest of each is
  reported (all times are in the JSON), so that a slow spell of a shared machine during one
  timing does not decide the ratio;
* samples/s over all sequences, per sequence, the real-time factor (seconds of audio made per
  second of wall time, all sequences) and the ratio to PRiSM (target >= 5, where PRiSM has a
  figure);
* peak RSS of the process (`ru_maxrss`).

`--full` also generates 16 x 10 s with the default config in one more process, timed on its first
call (compilation included) and not compared with the floor, for the memory target (peak RSS
< 4 GiB).

    .venv/bin/python benchmarks/bench_generate.py            # ~3 minutes
    .venv/bin/python benchmarks/bench_generate.py --full     # + 16 x 10 s default (~10 minutes)
    .venv/bin/python benchmarks/bench_generate.py --configs small --num_seqs 1 4

Prints a table and writes benchmarks/results/bench_generate.json.
"""
import argparse
import json
import os
import resource
import sys
import time

from common import (REPO, RESULTS_DIR, cell_in_subprocess, note_machine_state, seconds,
                    write_results)

RESULTS = os.path.join(RESULTS_DIR, "bench_generate.json")
SAMPLE_RATE = 16000
CONFIGS = {
    "small": os.path.join(REPO, "configs", "samplernn-small.config.json"),
    "default": os.path.join(REPO, "default.config.json"),
}
# Samples generated per sequence in each timed cell (the default config is far slower a sample).
# A call also has fixed costs (packing weights, folding the MLP's lookup table), which a 10 s
# clip spreads over 160,000 samples: 2,000 samples keep them a small part of a timed call.
NUM_SAMPLES = {"small": SAMPLE_RATE, "default": SAMPLE_RATE // 8}
# PRiSM SampleRNN on this 2-core CPU (issue "Speed"), samples/s over all sequences.
PRISM = {("small", 1): 2600, ("small", 4): 5600, ("default", 1): 258, ("default", 4): 607}
TARGET_PRISM_RATIO = 5.0
TARGET_FLOOR_RATIO = 1.5
RSS_LIMIT_GIB = 4.0
MODEL_KEYS = ("frame_sizes", "dim", "rnn_type", "num_rnn_layers", "q_type", "q_levels",
              "emb_size", "skip_conn")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--num_seqs", nargs="+", type=int, default=[1, 4, 16])
    p.add_argument("--num_samples", type=int, default=None,
                   help=f"samples per sequence (default: per config, {NUM_SAMPLES})")
    p.add_argument("--full", action="store_true",
                   help="also generate 16 x 10 s with the default config (peak RSS target)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timings of generation and of the floor per cell (alternated; the "
                        "fastest of each is reported)")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                   help="the models' matmul precision (the math floor uses the same)")
    p.add_argument("--groups", type=int, default=None,
                   help="groups of sequences generated at once (default: as generate.py "
                        "picks them, with its threads; 1: one batch on TensorFlow's default "
                        "threads)")
    p.add_argument("--output", default=RESULTS, help="JSON results file")
    p.add_argument("--worker", nargs=3, metavar=("CONFIG", "NUM_SEQS", "NUM_SAMPLES"),
                   help=argparse.SUPPRESS)
    p.add_argument("--no_warmup", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build_model(config_name, precision):
    from audiogen.samplernn import SampleRNN
    with open(CONFIGS[config_name], encoding="utf-8") as f:
        config = json.load(f)
    model = SampleRNN(**{k: config[k] for k in MODEL_KEYS}, precision=precision)
    model.build()
    return model


def make_floor_fn(model, batch, num_samples, engine="xla"):
    """The model's dense/RNN math for `num_samples` steps of `batch` sequences, compiled.

    One loop over the top tier's frames, whose body runs the tiers' steps in the order
    generation runs them (unrolled: the top tier's step, then for each of its `upsample_ratio`
    frames the next tier's step, and so on; for every bottom frame the MLP's `dim x dim` and
    output layers per sample, in a loop of `frame_size` steps as in generation, or the
    `SampleFrame` op). Every step's input is made from the previous outputs (a frame
    tier's frame from its state and the last bottom frame's logits, the MLP's input from its
    conditioning and the previous logits), as generation's depend on the samples: no iteration
    can be skipped, no product hoisted out of the loop, and none can run before the products it
    follows in generation. (A loop per tier would run each tier's weights on their own: at dim
    1024 the top tier's 117 MB and the bottom tier's 171 MB could each stay partly in the L3
    cache, which generation's interleaved 288 MB cannot.)

    The products are the sampler's for `engine`, with the tiers' input projections folded as
    the sampler folds them (`audiogen.samplernn.folded_tiers`): `"xla"`, everything compiled by
    XLA with the bottom upsampling in the sampler's folded shape `[dim, frame_size * dim]`;
    `"stream"`, the tiers' products through `StreamMatMul` on weights packed beforehand (not
    timed), the bottom upsampling followed by the first hidden layer on its `frame_size`
    vectors, and per bottom frame the `SampleFrame` op without its draws (its products and
    first-layer lookups; the XLA-compiled MLP steps where the op cannot be built).
    """
    import tensorflow as tf
    from audiogen.kernels import sample_frame, stream_matmul
    from audiogen.precision import dot
    from audiogen.samplernn.folded_tiers import fold_tiers, stream_products
    tiers, mlp, dim, q = model.tiers, model.mlp, model.dim, model.q_levels
    bottom, dtype = tiers[-1], tiers[-1].matmul_dtype
    f0, top = model.frame_sizes[0], model.frame_sizes[-1]
    num_gen = -(-num_samples // top) * top
    stream = engine == "stream"
    frame_op = sample_frame.load() if stream else None
    if stream:
        op = stream_matmul.load()
        product = stream_products(op, tiers, batch)
        w1 = mlp.hidden_kernel_1
        first_hidden = stream_matmul.PackedProducts(op, [w1], dtype, batch * f0)

        def bottom_up(out):
            up = tf.reshape(bottom.upsample(out, product), [batch * f0, dim])
            return tf.reshape(first_hidden(up, w1, dtype), [batch, f0, dim])
    else:
        product = dot
        up_kernel = tf.cast(tf.random.normal([dim, f0 * dim], stddev=0.01), dtype)

        def bottom_up(out):
            return tf.reshape(dot(out, up_kernel, dtype), [batch, f0, dim])

    if frame_op is not None:
        # The sampler's SampleFrame op without its draws (draw=False): the frame's products
        # (and first-layer lookups), weights packed beforehand (not timed).
        packed = [op.stream_pack(tf.convert_to_tensor(w, tf.float32), T=dtype)
                  for w in (mlp.hidden_kernel_2, mlp.output_kernel)]
        table = tf.random.normal([f0 * q, dim], stddev=0.03)
        window = tf.zeros([f0, batch], tf.int32)
        uniform, inv_temp = tf.fill([f0, batch], 0.5), tf.ones([batch])
        biases = [tf.convert_to_tensor(mlp.hidden_bias_2), tf.convert_to_tensor(mlp.output_bias)]

        def bottom_frame(cond, feedback):
            _, logits = frame_op.sample_frame(table, cond + 1e-6 * feedback[:, :, None], window,
                                              uniform, inv_temp, packed[0], biases[0],
                                              packed[1], biases[1], draw=False)
            return tf.reduce_sum(logits, axis=[0, 2])[:, None]
    else:
        def bottom_frame(cond, feedback):
            # A loop of its own, as in generation (under XLA faster than unrolled with the small
            # config at several sequences, equal at one).
            def step(i, h1, total):
                logits = mlp.head(h1)
                h1 = tf.nn.relu(tf.gather(cond, tf.minimum(i + 1, f0 - 1), axis=1)
                                + 1e-3 * logits[:, :1])
                return i + 1, h1, total + logits[:, :1]

            init = (tf.constant(0), tf.nn.relu(cond[:, 0] + 1e-6 * feedback),
                    tf.zeros([batch, 1]))
            return tf.while_loop(lambda i, *_: i < f0, step, init, maximum_iterations=f0)[2]

        if stream:
            bottom_frame = tf.function(bottom_frame, jit_compile=True, autograph=False)

    folded = fold_tiers(tiers, product)        # folded beforehand (not timed), as packed

    def tier_steps(k, cond, states, feedback):
        """Tier k's step, then the steps of the tiers below it for its frame."""
        tier = tiers[k]
        n_own = tier.rnn.num_states
        frame = tf.tile(states[0], [1, -(-tier.frame_size // dim)])[:, :tier.frame_size]
        out, own = folded[k].step(frame + 1e-6 * feedback, cond, states[:n_own])
        lower = states[n_own:]
        if tier is bottom:
            return own, bottom_frame(bottom_up(out), feedback)
        terms = folded[k].conditioning_terms(out, folded[k + 1])
        for j in range(tier.upsample_ratio):
            lower, feedback = tier_steps(k + 1, [t[:, j] for t in terms], lower, feedback)
        return own + lower, feedback

    @tf.function(jit_compile=not stream, autograph=False)
    def floor():
        def body(i, states, feedback):
            states, feedback = tier_steps(0, None, list(states), feedback)
            return i + 1, states, feedback

        _, _, feedback = tf.while_loop(
            lambda i, *_: i < num_gen // top, body,
            (tf.constant(0), model.initial_states(batch), tf.zeros([batch, 1])),
            maximum_iterations=num_gen // top)
        return tf.reduce_sum(feedback)

    return floor


def run_cell(config_name, num_seqs, num_samples, precision, warmup=True, repeats=3,
             groups=None):
    """One (config, num_seqs) cell in this process; returns its row.

    With `warmup`, generation and the floor are compiled first, then timed alternately `repeats`
    times each (the fastest counts); without it, generation is timed once, on its first call.
    `groups` (default: as `generate.py` picks them) splits the sequences into groups generated
    at once, and the floor runs each group's math at once too; TensorFlow's threads are set as
    `generate.py` sets them, except with `groups` 1 (TensorFlow's default threads).
    """
    import numpy as np
    from audiogen.samplernn.sampler import (
        choose_engine, generate, generation_groups, group_bounds, set_generation_threads)
    from audiogen.threads import run_concurrently

    with open(CONFIGS[config_name], encoding="utf-8") as f:  # before TensorFlow's first op
        engine = choose_engine(json.load(f)["dim"])
    if groups != 1 and not set_generation_threads(engine):   # as generate.py, unless --groups 1
        raise RuntimeError("generate.py's threads could not be set: TensorFlow already started")
    groups = generation_groups(num_seqs, engine) if groups is None else groups
    import tensorflow as tf
    model = build_model(config_name, precision)
    temps = np.full([num_seqs], 1.0, np.float32)
    row = {"config": config_name, "num_seqs": num_seqs, "num_samples": num_samples,
           "dim": model.dim, "num_rnn_layers": model.num_rnn_layers,
           "frame_sizes": list(model.frame_sizes), "precision": precision, "engine": engine,
           "groups": groups,
           "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
           "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
    def run_generate(rng_seed=2):
        out = np.asarray(generate(model, num_samples, temps, rng_seed=rng_seed,
                                  engine=engine, groups=groups))
        assert out.shape == (num_seqs, num_samples)

    row["compiled_before_timing"] = warmup
    row["floor_s"] = row["floor_ratio"] = None
    if not warmup:  # the long memory run (`--full`): first call, not compared with the floor
        row["generate_s_all"] = [seconds(run_generate)]
    else:
        row["first_call_s"] = seconds(lambda: run_generate(rng_seed=1))
        floors = [make_floor_fn(model, hi - lo, num_samples, engine)
                  for lo, hi in group_bounds(num_seqs, groups)]
        calls = [lambda floor=floor: float(floor()) for floor in floors]
        run_floor = lambda: run_concurrently(calls)
        run_floor()  # compile
        row["generate_s_all"], row["floor_s_all"] = [], []
        for _ in range(repeats):
            row["generate_s_all"].append(seconds(run_generate))
            row["floor_s_all"].append(seconds(run_floor))
        row["floor_s"] = min(row["floor_s_all"])
    row["generate_s"] = gen_s = min(row["generate_s_all"])
    if row["floor_s"]:
        row["floor_ratio"] = gen_s / row["floor_s"]

    total = num_seqs * num_samples
    row["samples_per_s"] = total / gen_s
    row["samples_per_s_per_seq"] = num_samples / gen_s
    row["real_time_factor"] = total / SAMPLE_RATE / gen_s
    prism = PRISM.get((config_name, num_seqs))
    row["prism_samples_per_s"] = prism
    row["prism_ratio"] = row["samples_per_s"] / prism if prism else None
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["tensorflow"] = tf.__version__
    return row


def spawn_cell(config_name, num_seqs, num_samples, precision, warmup=True, repeats=3,
               groups=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", config_name, str(num_seqs),
           str(num_samples), "--precision", precision, "--repeats", str(repeats)]
    cmd += [] if groups is None else ["--groups", str(groups)]
    cmd += [] if warmup else ["--no_warmup"]
    return cell_in_subprocess(cmd, f"{config_name} x{num_seqs}")


def print_table(rows):
    head = (f"{'config':<8}{'engine':<7}{'seqs':>5}{'groups':>7}{'samples':>9}{'gen s':>8}{'samples/s':>11}{'per seq':>9}"
            f"{'RTF':>7}{'PRiSM':>7}{'xPRiSM':>8}{'floor s':>9}{'floor x':>8}{'RSS MiB':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        prism = r["prism_samples_per_s"]
        print(f"{r['config']:<8}{r['engine']:<7}{r['num_seqs']:>5}{r['groups']:>7}{r['num_samples']:>9}{r['generate_s']:>8.2f}"
              f"{r['samples_per_s']:>11.0f}{r['samples_per_s_per_seq']:>9.0f}"
              f"{r['real_time_factor']:>7.2f}{'' if not prism else prism:>7}"
              f"{'' if not prism else format(r['prism_ratio'], '.1f'):>8}"
              + (f"{r['floor_s']:>9.2f}{r['floor_ratio']:>8.2f}" if r["floor_s"] else " " * 17)
              + f"{r['peak_rss_mib']:>9.0f}"
              + ("" if r["compiled_before_timing"] else "  (timed on the first call)"))
    print(f"samples/s over all sequences at {SAMPLE_RATE} Hz; RTF = seconds of audio per second; "
          f"xPRiSM target >= {TARGET_PRISM_RATIO}; floor x = generation time / math-floor time "
          f"(target <= {TARGET_FLOOR_RATIO}); RSS = peak resident memory of the cell's process "
          f"(target < {RSS_LIMIT_GIB} GiB for 16 x 10 s default).")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        name, seqs, samples = args.worker
        print(json.dumps(run_cell(name, int(seqs), int(samples), args.precision,
                                  not args.no_warmup, args.repeats, args.groups)))
        return 0
    start = time.perf_counter()
    machine_before = note_machine_state()
    rows = []
    cells = [(c, n, args.num_samples or NUM_SAMPLES[c], True)
             for c in args.configs for n in args.num_seqs]
    if args.full:
        cells.append(("default", 16, 10 * SAMPLE_RATE, False))
    for cell in cells:
        row = spawn_cell(*cell[:3], args.precision, cell[3], args.repeats, args.groups)
        rows.append(row)
        print(f"[{time.perf_counter() - start:5.0f} s] {row['config']} x{row['num_seqs']}: "
              f"{row['samples_per_s']:.0f} samples/s, floor ratio "
              f"{'-' if row['floor_ratio'] is None else format(row['floor_ratio'], '.2f')}, "
              f"RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
    print()
    print_table(rows)
    write_results(args.output, "bench_generate", argv, start, machine_before, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
