"""What generating in chunks costs: SampleRNN generation in chunks against one call.

`generate.py` runs `audiogen.samplernn.sampler.generate` in chunks of about a second each
(`audiogen/samplernn/chunks.py`), with a progress line between them. This compares that with
one compiled call for the whole clip (`chunk_samples=num_samples`), for the small config and
`default.config.json` at 1 and 4 sequences, each cell in its own process with the engine, groups
and threads `generate.py` picks. Both variants are compiled first (and their samples checked to
be the same), then timed alternately, `--repeats` times each, starting with each variant in
turn; the clips are long enough for several chunks per timing. Reported: the fastest and the
median timing of each, and the overhead of chunks, `chunked / one call - 1`, from the fastest
and from the medians; every timing is in the JSON.

On a shared VM two timings of the same work differ by several percent, more than chunks cost,
so each cell also measures what a chunk call costs beyond its samples directly: `--probe_frames`
top frames as that many one-frame calls against one call (medians of alternated timings),
`(many calls - one call) / (frames - 1)`; `estimated` is that cost times the chunks of a
timing, over the one-call time.

    .venv/bin/python benchmarks/bench_generate_chunks.py             # ~10 minutes
    .venv/bin/python benchmarks/bench_generate_chunks.py --configs small --num_seqs 1

Prints a table and writes benchmarks/results/bench_generate_chunks.json.
"""
import argparse
import io
import json
import os
import statistics
import sys
import time

from bench_generate import CONFIGS, SAMPLE_RATE, build_model
from common import (RESULTS_DIR, cell_in_subprocess, note_machine_state, seconds,
                    write_results)

RESULTS = os.path.join(RESULTS_DIR, "bench_generate_chunks.json")
# Samples per sequence: several seconds of generation per timing, so several chunks.
NUM_SAMPLES = {"small": 20 * SAMPLE_RATE, "default": 12_000}
# Top frames of the fixed-cost probe: each variant about half a second.
PROBE_FRAMES = {"small": 400, "default": 40}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--num_seqs", nargs="+", type=int, default=[1, 4])
    p.add_argument("--num_samples", type=int, default=None,
                   help=f"samples per sequence (default: per config, {NUM_SAMPLES})")
    p.add_argument("--repeats", type=int, default=4,
                   help="timings of each variant per cell (alternated)")
    p.add_argument("--probe_frames", type=int, default=None,
                   help=f"top frames of the fixed-cost probe (one-frame calls against one "
                        f"call; default: per config, {PROBE_FRAMES})")
    p.add_argument("--output", default=RESULTS, help="JSON results file")
    p.add_argument("--worker", nargs=3, metavar=("CONFIG", "NUM_SEQS", "NUM_SAMPLES"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_cell(config_name, num_seqs, num_samples, repeats, probe_frames):
    """One (config, num_seqs) cell in this process, with generate.py's engine, groups and
    threads; returns its row."""
    import numpy as np
    from audiogen.progress import ProgressLine
    from audiogen.samplernn.sampler import (
        choose_engine, generate, generation_groups, set_generation_threads)

    with open(CONFIGS[config_name], encoding="utf-8") as f:  # before TensorFlow's first op
        engine = choose_engine(json.load(f)["dim"])
    if not set_generation_threads(engine):
        raise RuntimeError("generate.py's threads could not be set: TensorFlow already started")
    groups = generation_groups(num_seqs, engine)
    model = build_model(config_name, "float32")
    temps = [1.0] * num_seqs
    reports = []

    def run(chunked, samples=num_samples, chunk_samples=None):
        """Generate `samples` per sequence: in one call, or chunked (sized by time, or
        `chunk_samples` each)."""
        reports.clear()
        line = ProgressLine("Generating", "samples", stream=io.StringIO())

        def progress(done, total):
            reports.append(done)
            line.update(done, total)

        return np.asarray(generate(model, samples, temps, rng_seed=2, engine=engine,
                                   groups=groups,
                                   chunk_samples=chunk_samples if chunked else samples,
                                   progress=progress))

    row = {"config": config_name, "num_seqs": num_seqs, "num_samples": num_samples,
           "engine": engine, "groups": groups}
    row["first_call_s"] = {"one_call": seconds(lambda: run(False)),
                           "chunked": seconds(lambda: run(True))}
    if not np.array_equal(run(False), run(True)):
        raise AssertionError("chunked generation made other samples than one call")
    times = {"one_call": [], "chunked": []}
    chunks = []
    for r in range(repeats):
        for chunked in ((False, True) if r % 2 == 0 else (True, False)):
            times["chunked" if chunked else "one_call"].append(seconds(lambda: run(chunked)))
            if chunked:
                chunks.append(len(reports) / groups)
    row["times_s"] = times
    row["chunks_per_group"] = chunks
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    row["best_s"], row["median_s"] = best, median
    row["overhead_best"] = best["chunked"] / best["one_call"] - 1
    row["overhead_median"] = median["chunked"] / median["one_call"] - 1
    row["samples_per_s_one_call"] = num_seqs * num_samples / best["one_call"]
    row["call_cost_s"] = call_cost(run, model.top_frame, probe_frames, repeats)
    row["overhead_estimated"] = (row["call_cost_s"] * statistics.median(chunks)
                                 / median["one_call"])
    return row


def call_cost(run, top_frame, frames, repeats):
    """Seconds a chunk call costs beyond its samples: `frames` top frames as one-frame calls
    against one call, medians of `repeats` alternated timings each."""
    samples = frames * top_frame
    variants = {"one": lambda: run(False, samples),
                "many": lambda: run(True, samples, chunk_samples=top_frame)}
    for variant in variants.values():
        variant()                                  # compiled before timing
    times = {name: [] for name in variants}
    for r in range(repeats):
        for name in (("one", "many") if r % 2 == 0 else ("many", "one")):
            times[name].append(seconds(variants[name]))
    median = {name: statistics.median(t) for name, t in times.items()}
    return (median["many"] - median["one"]) / max(frames - 1, 1)


def spawn_cell(config_name, num_seqs, num_samples, repeats, probe_frames):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", config_name, str(num_seqs),
           str(num_samples), "--repeats", str(repeats), "--probe_frames", str(probe_frames)]
    return cell_in_subprocess(cmd, f"{config_name} x{num_seqs}")


def print_table(rows):
    head = (f"{'config':<8}{'engine':<7}{'seqs':>5}{'groups':>7}{'samples':>9}{'chunks':>7}"
            f"{'one call s':>11}{'chunked s':>10}{'overhead':>9}{'median':>8}"
            f"{'samples/s':>11}{'call ms':>8}{'estimated':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['config']:<8}{r['engine']:<7}{r['num_seqs']:>5}{r['groups']:>7}"
              f"{r['num_samples']:>9}{statistics.median(r['chunks_per_group']):>7.0f}"
              f"{r['best_s']['one_call']:>11.2f}{r['best_s']['chunked']:>10.2f}"
              f"{100 * r['overhead_best']:>8.1f}%{100 * r['overhead_median']:>7.1f}%"
              f"{r['samples_per_s_one_call']:>11.0f}{1e3 * r['call_cost_s']:>8.2f}"
              f"{100 * r['overhead_estimated']:>9.2f}%")
    print("seconds: fastest timing of each variant; overhead = chunked / one call - 1 from the "
          "fastest timings, median: from the medians; chunks: per group and timing (median); "
          "samples/s: one call, all sequences; call ms: what a chunk call costs beyond its "
          "samples; estimated: that cost x chunks / one-call time.")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        name, seqs, samples = args.worker
        print(json.dumps(run_cell(name, int(seqs), int(samples), args.repeats,
                                  args.probe_frames)))
        return 0
    start = time.perf_counter()
    machine_before = note_machine_state()
    rows = []
    for name in args.configs:
        for seqs in args.num_seqs:
            row = spawn_cell(name, seqs, args.num_samples or NUM_SAMPLES[name], args.repeats,
                             args.probe_frames or PROBE_FRAMES[name])
            rows.append(row)
            print(f"[{time.perf_counter() - start:5.0f} s] {name} x{seqs}: overhead "
                  f"{100 * row['overhead_best']:.1f}% (median {100 * row['overhead_median']:.1f}%,"
                  f" estimated {100 * row['overhead_estimated']:.2f}%)", flush=True)
    print()
    print_table(rows)
    write_results(args.output, "bench_generate_chunks", argv, start, machine_before, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
