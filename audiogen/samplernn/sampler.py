"""Compiled SampleRNN generation: all sequences at once, in chunks of compiled calls.

`generate` runs the nested generation loops of `audiogen.samplernn.generation_loop` with an
engine of `audiogen.samplernn.engines`, cached on the model per (group size, chunk capacity,
logits, engine). A clip is made by a series of calls of whole top frames (`chunks`), which
carry the recurrent states and the last samples from one to the next, so that `progress` can
be reported between them; however it is cut, the samples are those of a single call.

Sampling draws from `softmax(logits / temperature)` by inverse CDF with one uniform number per
sequence and sample, all drawn before the loop by `tf.random.stateless_uniform` seeded with
`rng_seed` (`audiogen.samplernn.sampling`): a fixed `rng_seed` gives the same audio every time,
and for a float32 model with either engine (in bfloat16 the engines round the bottom
conditioning at different points).

`engine="auto"` picks the stream engine for `dim >= STREAM_MIN_DIM` when its ops can run here (a
CPU, the ops built, `AUDIOGEN_KERNELS` not off: `audiogen.kernels.dispatch`), else the XLA
engine, which is also the engine on a GPU. Small models run faster under XLA, whose loop keeps
their weights in the caches; large ones with the stream engine's products.
"""
import threading

import numpy as np
import tensorflow as tf

from audiogen.kernels.dispatch import compiled_op, gpu_visible
from audiogen.precision import matmul_dtype
from audiogen.samplernn.chunks import chunk_capacity, generate_group
from audiogen.samplernn.engines import ENGINE_CLASSES, whole_top_frames
from audiogen.threads import (
    available_cores, one_op_at_a_time, one_thread_per_op, run_concurrently)

ENGINES = ("auto", "xla", "stream")
STREAM_MIN_DIM = 512


def generate(model, num_samples, temperatures, prime_levels=None, rng_seed=0,
             return_logits=False, engine="auto", groups=1, chunk_samples=None, progress=None):
    """Generate `len(temperatures)` sequences with a SampleRNN `model`.

    Args:
        model: a `SampleRNN` (built or not).
        num_samples: int, samples to generate after the prime.
        temperatures: sequence of float > 0, one per sequence (batch size `B`).
        prime_levels: optional int `[B, S]` (or `[S]`, used for every sequence) quantized
            priming audio; the frame tiers consume all of it before generation begins.
        rng_seed: int, seed of the stateless sampling RNG.
        return_logits: bool, also return the unscaled logits of each generated sample
            (`[B, num_samples, q_levels]`), for inspection and tests.
        engine: `"auto"`, `"xla"` or `"stream"` (see the module's notes).
        groups: int, split the sequences into this many groups (of near-equal size) generated
            at the same time, one thread each: the same audio as one group. Faster with the
            XLA engine when each op runs on one thread (`audiogen.threads.one_thread_per_op`),
            so that every group's products keep a core of their own (see
            `generation_groups`).
        chunk_samples: None (default) for chunks of about a second each
            (`chunks.CHUNK_SECONDS`), or samples per sequence in each chunk, rounded up to
            whole top frames (`num_samples` or more: one call). The samples are the same.
        progress: optional `progress(done, total)`, called after each chunk (from the thread
            of the group that made it, one call at a time) with the samples generated so far
            over all sequences and `B * num_samples`; the last call has `done == total`.

    Returns:
        int32 `[B, S + num_samples]`: the prime followed by the generated levels (and the logits
        when `return_logits`). The compiled functions are cached per (group size, chunk
        capacity, return_logits, engine) on the model, so repeated calls and chunks do not
        retrace (the prime is consumed by a function of its own, traced per prime length).
    """
    groups = int(groups)
    temps = np.asarray(temperatures, np.float32).reshape([-1])
    if temps.size == 0 or np.any(temps <= 0):
        raise ValueError(f"temperatures must be a non-empty list of positive floats, "
                         f"got {temperatures!r}")
    batch = int(temps.size)
    num_samples = int(num_samples)
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    prime = _prime_array(prime_levels, batch, model.q_levels)
    if not 1 <= groups <= batch:
        raise ValueError(f"groups must lie in [1, {batch}] for {batch} sequences, got {groups}")
    model.build()
    engine = choose_engine(model.dim, engine, model.precision)
    num_gen = whole_top_frames(model.top_frame, num_samples)
    capacity = chunk_capacity(model.top_frame, num_gen // model.top_frame, chunk_samples)
    uniform = tf.random.stateless_uniform([num_gen, batch], seed=[int(rng_seed) % 2**31, 0],
                                          alg="philox").numpy()
    inv_temps = 1.0 / temps
    report = _Progress(progress, num_samples, batch)
    cache = model._untracked.generate_fns
    calls = []
    for lo, hi in group_bounds(batch, groups):
        key = (hi - lo, capacity, bool(return_logits), engine)
        if key not in cache:
            cache[key] = ENGINE_CLASSES[engine](model, *key[:3])
        calls.append(lambda loop=cache[key], lo=lo, hi=hi: generate_group(
            loop, prime[lo:hi], inv_temps[lo:hi], uniform[:, lo:hi],
            chunk_samples is not None, report.group(hi - lo)))
    results = run_concurrently(calls)
    levels = np.concatenate([r[0] for r in results], axis=1).T[:, :num_samples]
    out = tf.constant(np.concatenate([prime, levels], axis=1))
    if not return_logits:
        return out
    logits = np.concatenate([r[1] for r in results], axis=1)
    return out, tf.constant(logits.transpose([1, 0, 2])[:, :num_samples])


class _Progress:
    """The samples generated by every group, summed for `callback(done, total)`."""

    def __init__(self, callback, num_samples, batch):
        self.callback, self.num_samples = callback, num_samples
        self.total = batch * num_samples
        self.done = 0
        self.lock = threading.Lock()

    def group(self, size):
        """`on_chunk(generated)` for a group of `size` sequences."""
        counted = [0]

        def on_chunk(generated):
            if self.callback is None:
                return
            with self.lock:
                now = min(generated, self.num_samples)
                self.done += size * (now - counted[0])
                counted[0] = now
                self.callback(self.done, self.total)

        return on_chunk


def _prime_array(prime_levels, batch, q_levels):
    """`prime_levels` as int32 `[batch, S]` (`[batch, 0]` for none); ValueError when it does not
    fit."""
    if prime_levels is None:
        return np.zeros([batch, 0], np.int32)
    prime = np.asarray(prime_levels, np.int32)
    if prime.ndim == 1:
        prime = prime[None]
    if prime.ndim != 2 or prime.shape[0] not in (1, batch):
        raise ValueError(f"prime_levels must be [{batch}, S] or [S], got shape {prime.shape}")
    prime = np.broadcast_to(prime, [batch, prime.shape[1]])
    if prime.size and (prime.min() < 0 or prime.max() >= q_levels):
        raise ValueError(f"prime_levels must lie in [0, {q_levels})")
    return prime


def generation_groups(num_seqs, engine, cores=None):
    """The `groups` that generate `num_seqs` sequences fastest with `engine` on `cores` cores
    (default: this process's), provided each op runs on one thread: for the XLA engine one
    group per core (as many as there are sequences); for the stream engine one, since its ops
    already use every core.

    A small model's products are too small to gain from being split between the cores (as
    TensorFlow's default threads do); a group per core keeps each core busy with whole steps.
    """
    if engine != "xla":
        return 1
    return max(1, min(cores or available_cores(), num_seqs))


def set_generation_threads(engine):
    """Set TensorFlow's threads for generating with `engine`, which is possible only before
    TensorFlow's first op: for the XLA engine one thread per op (for `generation_groups`), for
    the stream engine one op at a time, each split between the intra-op threads. Returns True
    when the setting is in effect, False when TensorFlow already runs with another one.

    The stream engine's ops each split their work between the cores; with several inter-op
    threads, two of them would run at once, each split, crowding the cores. On a GPU nothing is
    set (False).
    """
    if gpu_visible():
        return False
    return one_thread_per_op() if engine == "xla" else one_op_at_a_time()


def group_bounds(batch, groups):
    """`groups` contiguous `(lo, hi)` ranges of near-equal size covering `[0, batch)`."""
    edges = [batch * g // groups for g in range(groups + 1)]
    return list(zip(edges[:-1], edges[1:]))


def choose_engine(dim, engine="auto", precision="float32"):
    """`"xla"` or `"stream"` for generating with a model of width `dim` and `precision` (see
    the module's notes); raises ValueError for an unknown engine, RuntimeError for `"stream"`
    when its ops cannot run here."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "xla" or (engine == "auto" and dim < STREAM_MIN_DIM):
        return "xla"
    op = compiled_op("stream_matmul", dtype=matmul_dtype(precision))
    if engine == "auto":
        return "stream" if op is not None else "xla"
    if op is None:
        raise RuntimeError("engine 'stream' needs the StreamMatMul op on the CPU: it could not "
                           "be built here (see the warning above), AUDIOGEN_KERNELS is off, a "
                           "GPU is in use, or the precision is mixed_float16; use engine 'xla'")
    return engine
