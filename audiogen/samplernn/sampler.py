"""Compiled SampleRNN generation: one call for all samples of all sequences.

The sampler runs nested `tf.while_loop`s inside one `tf.function`: the top tier
loops over its frames, every tier steps only at its own frame boundaries, and the innermost loop
produces one sample per iteration for the whole batch. Work that changes only once per frame is
done once per frame:

* the sample-level MLP's input layer *and* first hidden layer are folded into a lookup table
  `[frame_size, q_levels, dim]` (no nonlinearity lies between them), so a sample costs a
  gather-add of `frame_size` rows, one `dim x dim` layer and the output layer;
* with the XLA engine, the bottom tier's upsampling is folded with that first hidden layer too,
  so its conditioning arrives already multiplied through (one matrix product per bottom frame).

Sampling draws from `softmax(logits / temperature)` by inverse CDF with one uniform number per
sequence and sample, all drawn before the loop by `tf.random.stateless_uniform` seeded with
`rng_seed`, so a fixed `rng_seed` gives the same audio every time, and for a float32 model with
either engine (XLA's own stateless RNG, with a seed computed in the loop, draws other numbers
than TensorFlow's; in bfloat16 the engines round the bottom conditioning at different points).
`tf.random.stateless_categorical` computes the same distribution but draws `q_levels` random
numbers per sample, which under XLA on CPU made it the most expensive op of the loop.

Two engines run the same loops (`engine`):

* `"xla"`: the whole function compiled with XLA (`jit_compile=True`). Best for small models,
  whose weights stay in the caches and whose steps are many small operations.
* `"stream"`: the frame tiers as a TensorFlow graph whose products with the large weights (RNN
  kernels, upsampling, the MLP's first hidden layer on the bottom conditioning) go through the
  compiled `StreamMatMul` op (`audiogen.kernels.stream_matmul`), each weight packed once per
  call; each bottom frame's samples are one `SampleFrame` op (`audiogen.kernels.sample_frame`:
  the MLP's products split between threads, the draws), or, where that op cannot be built, an
  XLA-compiled loop. With dim 1024 a sample streams ~17 MB of weights at one sequence; the ops
  stream them faster than XLA and, for bfloat16 weights, with half the bytes.

`"auto"` picks `"stream"` for `dim >= STREAM_MIN_DIM` (measured: dim 256 runs far faster under
XLA, dim 1024 faster with the op) when the op can be built here.

Positions: the model sees `frame_sizes[-1]` samples of silence, then the seed (left-padded with
silence to a multiple of the top frame size), then the generated samples, exactly as a training
piece begins with silence and continues window after window. The seed is consumed by the frame
tiers in one teacher-forced pass from the learned initial states.
"""
import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from audiogen.audio.quantize import silence_level
from audiogen.kernels import sample_frame, stream_matmul
from audiogen.precision import dot, to_matmul_dtype
from audiogen.samplernn.folded_tiers import fold_tiers, stream_products
from audiogen.samplernn.layers import levels_to_inputs
from audiogen.threads import (
    available_cores, one_op_at_a_time, one_thread_per_op, run_concurrently)

ENGINES = ("auto", "xla", "stream")
STREAM_MIN_DIM = 512


def generate(model, num_samples, temperatures, seed_levels=None, rng_seed=0,
             return_logits=False, engine="auto", groups=1):
    """Generate `len(temperatures)` sequences with a SampleRNN `model`.

    Args:
        model: a `SampleRNN` (built or not).
        num_samples: int, samples to generate after the seed.
        temperatures: sequence of float > 0, one per sequence (batch size `B`).
        seed_levels: optional int `[B, S]` (or `[S]`, used for every sequence) quantized priming
            audio; the frame tiers consume all of it before generation begins.
        rng_seed: int, seed of the stateless sampling RNG.
        return_logits: bool, also return the unscaled logits of each generated sample
            (`[B, num_samples, q_levels]`), for inspection and tests.
        engine: `"auto"`, `"xla"` or `"stream"` (see the module's notes).
        groups: int, split the sequences into this many groups (of near-equal size) generated
            at the same time, one thread each: the same audio as one group. Faster with the
            XLA engine when each op runs on one thread (`audiogen.threads.one_thread_per_op`),
            so that every group's products keep a core of their own (see
            `generation_groups`).

    Returns:
        int32 `[B, S + num_samples]`: the seed followed by the generated levels (and the logits
        when `return_logits`). The compiled function is cached per (group size, S,
        num_samples, return_logits, engine) on the model, so repeated calls do not retrace.
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
    if seed_levels is None:
        seed = np.zeros([batch, 0], np.int32)
    else:
        seed = np.asarray(seed_levels, np.int32)
        if seed.ndim == 1:
            seed = seed[None]
        if seed.ndim != 2 or seed.shape[0] not in (1, batch):
            raise ValueError(f"seed_levels must be [{batch}, S] or [S], got shape {seed.shape}")
        seed = np.broadcast_to(seed, [batch, seed.shape[1]])
        if seed.size and (seed.min() < 0 or seed.max() >= model.q_levels):
            raise ValueError(f"seed_levels must lie in [0, {model.q_levels})")
    if not 1 <= groups <= batch:
        raise ValueError(f"groups must lie in [1, {batch}] for {batch} sequences, got {groups}")
    model.build()
    engine = choose_engine(model.dim, engine)
    uniform = tf.random.stateless_uniform([_whole_top_frames(model, num_samples), batch],
                                          seed=[int(rng_seed) % 2**31, 0], alg="philox")
    inv_temps = 1.0 / temps
    cache = model._untracked.generate_fns
    calls = []
    for lo, hi in group_bounds(batch, groups):
        key = (hi - lo, int(seed.shape[1]), num_samples, bool(return_logits), engine)
        if key not in cache:
            cache[key] = _make_generate_fn(model, *key)
        calls.append(lambda fn=cache[key], lo=lo, hi=hi: fn(
            tf.constant(seed[lo:hi]), tf.constant(inv_temps[lo:hi]), uniform[:, lo:hi]))
    results = run_concurrently(calls)
    out = tf.concat([r[0] for r in results], axis=0)
    if not return_logits:
        return out
    return out, tf.concat([r[1] for r in results], axis=0)


def generation_groups(num_seqs, engine, cores=None):
    """The `groups` that generate `num_seqs` sequences fastest with `engine` on `cores` cores
    (default: this process's), provided each op runs on one thread: for the XLA engine one
    group per core (as many as there are sequences); for the stream engine one, since its ops
    already use every core.

    Measured with the small config on 2 cores (float32, alternate processes): 4 or 16
    sequences as 2 groups were faster than one batch on TensorFlow's default threads (which
    split each small product between the cores) in 17 of 19 pairs, median 1.95x; one sequence
    on one thread per op as fast as on the default threads (`benchmarks/README.md`, session 11).
    """
    if engine != "xla":
        return 1
    return max(1, min(cores or available_cores(), num_seqs))


def set_generation_threads(engine):
    """Set TensorFlow's threads for generating with `engine`, which is possible only before
    TensorFlow's first op: for the XLA engine one thread per op (for `generation_groups`), for
    the stream engine one op at a time, each split between the intra-op threads. Returns True
    when the setting is in effect, False when TensorFlow already runs with another one.

    The stream engine's ops each split their work between the cores; with TensorFlow's two
    inter-op threads here, two of them ran at once on four threads over two cores. Default
    config, float32, 2,000 samples, alternate processes on 2 cores: four sequences 1.36-1.71 s
    one op at a time against 1.56-1.75 on the default threads (faster in 6 of 6 pairs), one
    and sixteen sequences unchanged (`benchmarks/README.md`, session 12).
    """
    return one_thread_per_op() if engine == "xla" else one_op_at_a_time()


def group_bounds(batch, groups):
    """`groups` contiguous `(lo, hi)` ranges of near-equal size covering `[0, batch)`."""
    edges = [batch * g // groups for g in range(groups + 1)]
    return list(zip(edges[:-1], edges[1:]))


def choose_engine(dim, engine="auto"):
    """`"xla"` or `"stream"` for generating with a model of width `dim` (see the module's
    notes); raises ValueError for an unknown engine, RuntimeError for `"stream"` when its op
    cannot be built here."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "auto":
        if dim < STREAM_MIN_DIM:
            return "xla"
        return "stream" if stream_matmul.load() is not None else "xla"
    if engine == "stream" and stream_matmul.load() is None:
        raise RuntimeError("engine 'stream' needs the StreamMatMul op, which could not be built "
                           "here (see the warning above); use engine 'xla'")
    return engine


def _whole_top_frames(model, num_samples):
    """Samples generated for `num_samples`: whole frames of the top tier."""
    top = model.frame_sizes[-1]
    return -(-num_samples // top) * top


def _make_generate_fn(model, batch, seed_len, num_samples, return_logits, engine):
    sizes = list(reversed(model.frame_sizes))                # top to bottom
    top, f0 = sizes[0], sizes[-1]
    q, dim, b = model.q_levels, model.dim, batch
    tiers, mlp = model.tiers, model.mlp
    pad = (-seed_len) % top
    prefix = top + pad + seed_len                            # samples before the first generated
    num_gen = _whole_top_frames(model, num_samples)
    silence = silence_level(model.q_type, model.q_levels)
    state_counts = model.state_sizes
    stream = engine == "stream"

    @tf.function(jit_compile=not stream, autograph=False)
    def run(seed, inv_temp, uniform):
        # --- per-call folding of the MLP's first two layers (and the bottom upsampling) ---
        table, bias1, w1 = mlp.folded_tables()
        table = tf.reshape(table, [f0 * q, dim])
        offsets = tf.range(f0)[:, None] * q                    # [f0, 1]
        bottom = tiers[-1]
        if stream:
            product = stream_products(stream_matmul.load(), tiers, b)
            first_hidden = stream_matmul.PackedProducts(stream_matmul.load(), [w1],
                                                        bottom.matmul_dtype, b * f0)

            def bottom_conditioning(out):
                # Upsampling, then the first hidden layer on all f0 vectors at once: folding
                # the two (as below) costs 2 dim^3 f0 operations per call (34 GFLOP at dim 1024).
                up = tf.reshape(bottom.upsample(out, product), [b * f0, dim])
                return tf.reshape(first_hidden(up, w1, bottom.matmul_dtype) + bias1,
                                  [b, f0, dim])
        else:
            product = dot
            up_kernel = to_matmul_dtype(tf.reshape(
                tf.einsum("dfe,ek->dfk", tf.reshape(bottom.upsample_kernel, [dim, f0, dim]), w1),
                [dim, f0 * dim]), bottom.matmul_dtype)
            up_bias = tf.reshape(
                tf.matmul(tf.reshape(bottom.upsample_bias, [f0, dim]), w1) + bias1, [f0 * dim])

            def bottom_conditioning(out):
                return tf.reshape(dot(out, up_kernel, bottom.matmul_dtype) + up_bias,
                                  [b, f0, dim])

        folded = fold_tiers(tiers, product)

        # --- buffer (time-major) and priming ---
        primer = tf.concat([tf.fill([top + pad, b], silence), tf.transpose(seed)], axis=0)
        buffer = _new_buffer(primer, num_gen, stream)
        states = model.initial_states(b)
        if seed_len:
            _, states = model.frame_tiers(tf.transpose(primer), states)
        logits_buf = (tf.TensorArray(tf.float32, size=num_gen, element_shape=[b, q]) if stream
                      else tf.zeros([num_gen, b, q] if return_logits else [], tf.float32))

        def frame_samples(window, cond, uniform_rows):
            """The `f0` samples of one bottom frame: `window` `[f0, b]` holds the samples before
            it, `cond` `[b, f0, dim]` (folded), `uniform_rows` `[f0, b]`. Returns the samples
            `[f0, b]` (the window after `f0` steps) and their logits `[f0, b, q]` (or `[]`)."""
            def body(i, window, logits):
                # f0 row gathers summed: XLA fuses them with the sum into one loop (a gather of
                # [f0, b, dim] and a reduction were materialized: ~10% of a step at 16 sequences).
                rows = tf.unstack(window + offsets)                           # f0 x [b]
                looked_up = tf.add_n([tf.gather(table, row) for row in rows])  # [b, dim]
                h1 = tf.nn.relu(looked_up + tf.gather(cond, i, axis=1))
                step_logits = mlp.head(h1)                                     # [b, q]
                sample = sample_categorical(step_logits, inv_temp, tf.gather(uniform_rows, i))
                window = tf.concat([window[1:], sample[None]], axis=0)
                if return_logits:
                    logits = xla.dynamic_update_slice(logits, step_logits[None],
                                                      tf.stack([i, 0, 0]))
                return i + 1, window, logits

            logits = tf.zeros([f0, b, q] if return_logits else [], tf.float32)
            _, window, logits = tf.while_loop(
                lambda i, *_: i < f0, body, [tf.constant(0), window, logits],
                maximum_iterations=f0)
            return window, logits

        if stream:
            frame_op = sample_frame.load()
            if frame_op is not None:
                frame_samples = _frame_op_samples(frame_op, mlp, table, inv_temp)
            else:
                # As graph ops the loop's many small operations would cost more than the
                # products (~1.2 ms per step at dim 1024, 4 sequences): compiled instead.
                frame_samples = tf.function(frame_samples, jit_compile=True, autograph=False)

        def sample_loop(pos0, cond, buffer, logits_buf):
            """`f0` samples from position `pos0`; `cond` `[b, f0, dim]` (folded)."""
            samples, logits = frame_samples(_window(buffer, pos0, f0, b), cond,
                                            tf.slice(uniform, tf.stack([pos0 - prefix, 0]),
                                                     [f0, b]))
            buffer = _put_rows(buffer, samples, pos0)
            if return_logits:
                logits_buf = _put_rows(logits_buf, logits, pos0 - prefix)
            return buffer, logits_buf

        def frame_loop(k, pos0, steps, conds, tier_states, buffer, logits_buf):
            """`steps` frames of tier k from position `pos0`; `conds` the tier above's
            `conditioning_terms` (a list of `[b, steps, gates * dim]`) or None.

            `tier_states` is the flat list of the states of tiers k and below.
            """
            tier = tiers[k]
            size, n_own = tier.frame_size, state_counts[k]

            def body(j, flat_states, buffer, logits_buf):
                pos = pos0 + j * size
                frame = levels_to_inputs(tf.transpose(_window(buffer, pos, size, b)), q)
                cond = None if conds is None else [tf.gather(c, j, axis=1) for c in conds]
                out, own = folded[k].step(frame, cond, flat_states[:n_own])
                lower = list(flat_states[n_own:])
                if k + 1 < len(tiers):
                    lower, buffer, logits_buf = frame_loop(
                        k + 1, pos, tier.upsample_ratio,
                        folded[k].conditioning_terms(out, folded[k + 1]), lower, buffer,
                        logits_buf)
                else:
                    buffer, logits_buf = sample_loop(pos, bottom_conditioning(out), buffer,
                                                     logits_buf)
                return j + 1, own + lower, buffer, logits_buf

            _, flat, buffer, logits_buf = tf.while_loop(
                lambda j, *_: j < steps, body,
                [tf.constant(0), list(tier_states), buffer, logits_buf],
                maximum_iterations=steps)
            return flat, buffer, logits_buf

        _, buffer, logits_buf = frame_loop(0, tf.constant(prefix), num_gen // top, None, states,
                                           buffer, logits_buf)
        if stream:
            buffer = buffer.stack()
            logits_buf = logits_buf.stack() if return_logits else tf.zeros([])
        out = tf.transpose(buffer[top + pad:top + pad + seed_len + num_samples])
        if return_logits:
            logits_buf = tf.transpose(logits_buf[:num_samples], [1, 0, 2])
        return out, logits_buf

    return run


def _frame_op_samples(op_module, mlp, table, inv_temp):
    """`frame_samples` of the stream engine through the `SampleFrame` op: the MLP's hidden and
    output kernels packed once (here, outside the loops), both products split between threads
    (at dim 1024 and one sequence 52-80 us a sample in bfloat16, 143-163 in float32, against
    ~240 and ~300 in XLA's one-thread loop)."""
    packed = [stream_matmul.load().stream_pack(tf.convert_to_tensor(kernel, tf.float32),
                                               T=mlp.matmul_dtype)
              for kernel in (mlp.hidden_kernel_2, mlp.output_kernel)]

    def frame_samples(window, cond, uniform_rows):
        return op_module.sample_frame(table, cond, window, uniform_rows, inv_temp, packed[0],
                                      tf.convert_to_tensor(mlp.hidden_bias_2), packed[1],
                                      tf.convert_to_tensor(mlp.output_bias))

    return frame_samples


def sample_categorical(logits, inv_temp, uniform):
    """One draw per row from `softmax(logits * inv_temp)` by inverse CDF.

    Args: `logits` `[B, q]`, `inv_temp` `[B]`, `uniform` `[B]` numbers in [0, 1). Returns int32
    `[B]`. The CDF is searched in two levels (blocks of ~sqrt(q) levels, then inside the chosen
    block), each a short cumulative sum, because a length-q `cumsum` lowers to a slow O(q^2)
    reduce-window under XLA on CPU. `tf.random.stateless_categorical` would draw q random
    numbers per row; under XLA on CPU it was the costliest op of the sampling loop (14 us for one
    row, 117 us for four, against ~1-8 us here).
    """
    batch, q = tf.shape(logits)[0], logits.shape[-1]
    block = int(np.ceil(np.sqrt(q)))
    blocks = -(-q // block)
    scaled = logits * inv_temp[:, None]
    weights = tf.exp(scaled - tf.reduce_max(scaled, axis=-1, keepdims=True))
    if blocks * block > q:
        weights = tf.pad(weights, [[0, 0], [0, blocks * block - q]])
    weights = tf.reshape(weights, [batch, blocks, block])
    block_sums = tf.reduce_sum(weights, axis=-1)                               # [B, blocks]
    inclusive = _short_cumsum(block_sums)
    target = uniform[:, None] * inclusive[:, -1:]                               # [B, 1]
    chosen = tf.minimum(tf.reduce_sum(tf.cast(inclusive <= target, tf.int32), -1), blocks - 1)
    inner = (_short_cumsum(tf.gather(weights, chosen, batch_dims=1))
             + tf.gather(inclusive - block_sums, chosen, batch_dims=1)[:, None])
    index = chosen * block + tf.reduce_sum(tf.cast(inner <= target, tf.int32), -1)
    return tf.minimum(index, q - 1)


def _short_cumsum(x):
    """Inclusive cumulative sum of `x` `[B, n]` along its last axis for small n, as a masked sum
    (`[B, n, n]`): under XLA a few fused loops. A product with a triangular matrix computes the
    same but called the runtime's matrix product, ~1 us a call at four rows."""
    n = x.shape[-1]
    return tf.reduce_sum(x[:, :, None] * np.triu(np.ones([n, n], np.float32)), axis=1)


# The time-major sample buffer: a tensor updated in place under XLA, a TensorArray in a graph
# (where every update of a tensor, `dynamic_update_slice` or `tensor_scatter_nd_update`, copies
# the whole buffer: generation would be quadratic in its length).

def _new_buffer(primer, num_gen, graph):
    """`primer` `[P, b]` followed by room for `num_gen` rows."""
    if graph:
        total, b = primer.shape[0] + num_gen, primer.shape[1]
        ta = tf.TensorArray(tf.int32, size=total, element_shape=[b])
        return ta.scatter(tf.range(primer.shape[0]), primer) if primer.shape[0] else ta
    return tf.concat([primer, tf.zeros([num_gen, primer.shape[1]], tf.int32)], axis=0)


def _window(buffer, pos, size, b):
    """Rows `[pos - size, pos)` of the buffer: `[size, b]`."""
    if isinstance(buffer, tf.TensorArray):
        return tf.ensure_shape(buffer.gather(tf.range(pos - size, pos)), [size, b])
    return tf.slice(buffer, tf.stack([pos - size, 0]), [size, b])


def _put_rows(buffer, rows, pos):
    """Write `rows` `[n, ...]` at times `[pos, pos + n)` (in place under XLA:
    `tf.tensor_scatter_nd_update` was fused by XLA into a loop that rewrote the whole buffer on
    every write)."""
    if isinstance(buffer, tf.TensorArray):
        return buffer.scatter(tf.range(pos, pos + tf.shape(rows)[0]), rows)
    start = [pos] + [0] * (len(rows.shape) - 1)
    return xla.dynamic_update_slice(buffer, rows, tf.stack(start))
