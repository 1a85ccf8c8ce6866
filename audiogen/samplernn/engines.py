"""SampleRNN's two generation engines: one loop skeleton, two ways to run it.

`GenerationLoop` holds the nested loops for a batch of sequences: the top tier loops over its
frames, every tier steps only at its own frame boundaries, and the innermost loop makes one
sample of every sequence per iteration. Work that changes once per frame is done once per frame:
the sample-level MLP's input layer and first hidden layer are folded into a lookup table (no
nonlinearity lies between them), and each frame tier's input projection is folded into its RNN's
input kernels (`folded_tiers`).

Positions: the model sees `frame_sizes[-1]` samples of silence, then the prime (left-padded with
silence to a multiple of the top frame size), then the generated samples, exactly as a training
piece begins with silence and continues window after window. The prime is consumed by the frame
tiers in one teacher-forced pass from the learned initial states.

* `XlaEngine`: the whole loop compiled with XLA. Best for small models, whose weights stay in
  the caches and whose steps are many small operations; the sample buffer is a tensor updated in
  place.
* `StreamEngine`: the frame tiers as a TensorFlow graph whose products with the large weights go
  through the compiled `StreamMatMul` op (each weight packed once per call), and each bottom
  frame's samples through the `SampleFrame` op (or, where it cannot be built, an XLA-compiled
  loop). For models whose weights far exceed the caches, so that every sample streams them
  from memory: the ops stream them faster, and bfloat16 weights with half the bytes. In a graph
  every update of a tensor copies it, so the sample buffer is a TensorArray.
"""
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from audiogen.audio.quantize import silence_level
from audiogen.kernels import stream_matmul
from audiogen.kernels.dispatch import compiled_op
from audiogen.precision import dot, to_matmul_dtype
from audiogen.samplernn.folded_tiers import fold_tiers, stream_products
from audiogen.samplernn.frame_tier import levels_to_inputs
from audiogen.samplernn.sampling import sample_categorical


def whole_top_frames(top_frame, num_samples):
    """Samples generated for `num_samples`: whole frames of the top tier."""
    return -(-num_samples // top_frame) * top_frame


class GenerationLoop:
    """Generation of `batch` sequences of `num_samples` after a prime of `prime_len` samples.

    Args:
        model: a built `SampleRNN`.
        batch, prime_len, num_samples: `int`s.
        return_logits: `bool`, also return the logits of every generated sample.

    Call: `(prime, inv_temp, uniform)` with `prime` int32 `[batch, prime_len]`, `inv_temp`
    `[batch]`, `uniform` `[whole_top_frames, batch]` -> (int32 `[batch, prime_len +
    num_samples]`, logits `[batch, num_samples, q_levels]` or `[]`).

    Subclasses set `jit_compile` and provide the per-call preparation (`prepare`: the products,
    the bottom tier's conditioning, the frame sampler) and the sample buffer (`new_buffer`,
    `window`, `put_rows`, `stacked`).
    """
    jit_compile = True

    def __init__(self, model, batch, prime_len, num_samples, return_logits):
        self.model = model
        self.batch, self.prime_len, self.num_samples = batch, prime_len, num_samples
        self.return_logits = return_logits
        self.top, self.f0 = model.frame_sizes[-1], model.frame_sizes[0]
        self.pad = (-prime_len) % self.top
        self.prefix = self.top + self.pad + prime_len  # samples before the first generated one
        self.num_gen = whole_top_frames(self.top, num_samples)
        self.silence = silence_level(model.q_type, model.q_levels)
        self.function = tf.function(self._run, jit_compile=self.jit_compile, autograph=False)

    def __call__(self, prime, inv_temp, uniform):
        return self.function(prime, inv_temp, uniform)

    # --- what the engines provide ---------------------------------------------------------------

    def prepare(self, table, bias1, w1):
        """Set `self.product`, `self.bottom_conditioning` and `self.frame_samples` for this
        call, from the MLP's folded table `[f0 * q, dim]`, bias and first hidden kernel."""
        raise NotImplementedError

    # --- one call --------------------------------------------------------------------------------

    def _run(self, prime, inv_temp, uniform):
        model, b = self.model, self.batch
        table, bias1, w1 = model.mlp.folded_tables()
        self.table = tf.reshape(table, [self.f0 * model.q_levels, model.dim])
        self.inv_temp, self.uniform = inv_temp, uniform
        self.prepare(self.table, bias1, w1)
        self.folded = fold_tiers(model.tiers, self.product)
        primer = tf.concat([tf.fill([self.top + self.pad, b], self.silence), tf.transpose(prime)],
                           axis=0)
        states = model.initial_states(b)
        if self.prime_len:
            _, states = model.frame_tiers(tf.transpose(primer), states)
        _, buffer, logits = self.frame_loop(0, tf.constant(self.prefix), self.num_gen // self.top,
                                            None, states, self.new_buffer(primer),
                                            self.new_logits())
        buffer, logits = self.stacked(buffer, logits)
        start = self.top + self.pad
        out = tf.transpose(buffer[start:start + self.prime_len + self.num_samples])
        if self.return_logits:
            logits = tf.transpose(logits[:self.num_samples], [1, 0, 2])
        return out, logits

    def frame_loop(self, k, pos0, steps, conds, tier_states, buffer, logits):
        """`steps` frames of tier `k` from position `pos0`; `conds` the tier above's
        `conditioning_terms` (a list of `[b, steps, gates * dim]`) or None; `tier_states` the
        flat states of tiers `k` and below."""
        tiers = self.model.tiers
        tier, n_own = tiers[k], self.model.state_sizes[k]

        def body(j, flat_states, buffer, logits):
            pos = pos0 + j * tier.frame_size
            frame = levels_to_inputs(tf.transpose(self.window(buffer, pos, tier.frame_size)),
                                     self.model.q_levels)
            cond = None if conds is None else [tf.gather(c, j, axis=1) for c in conds]
            out, own = self.folded[k].step(frame, cond, flat_states[:n_own])
            lower = list(flat_states[n_own:])
            if k + 1 < len(tiers):
                lower, buffer, logits = self.frame_loop(
                    k + 1, pos, tier.upsample_ratio,
                    self.folded[k].conditioning_terms(out, self.folded[k + 1]), lower, buffer,
                    logits)
            else:
                buffer, logits = self.sample_loop(pos, self.bottom_conditioning(out), buffer,
                                                  logits)
            return j + 1, own + lower, buffer, logits

        _, flat, buffer, logits = tf.while_loop(
            lambda j, *_: j < steps, body, [tf.constant(0), list(tier_states), buffer, logits],
            maximum_iterations=steps)
        return flat, buffer, logits

    def sample_loop(self, pos0, cond, buffer, logits):
        """The `f0` samples of one bottom frame from position `pos0`; `cond` `[b, f0, dim]`
        (through the MLP's first hidden layer)."""
        f0, b = self.f0, self.batch
        uniform_rows = tf.slice(self.uniform, tf.stack([pos0 - self.prefix, 0]), [f0, b])
        samples, frame_logits = self.frame_samples(self.window(buffer, pos0, f0), cond,
                                                   uniform_rows)
        buffer = self.put_rows(buffer, samples, pos0)
        if self.return_logits:
            logits = self.put_rows(logits, frame_logits, pos0 - self.prefix)
        return buffer, logits

    def frame_samples_loop(self, window, cond, uniform_rows):
        """The `f0` samples of one bottom frame, one per iteration: `window` `[f0, b]` holds the
        samples before it, `cond` `[b, f0, dim]`, `uniform_rows` `[f0, b]`. Returns the samples
        `[f0, b]` and their logits `[f0, b, q]` (or `[]`)."""
        f0, b, q = self.f0, self.batch, self.model.q_levels
        offsets = tf.range(f0)[:, None] * q

        def body(i, window, logits):
            # f0 row gathers summed: XLA fuses them with the sum into one loop (one gather of
            # [f0, b, dim] and a reduction would be materialized).
            rows = tf.unstack(window + offsets)
            looked_up = tf.add_n([tf.gather(self.table, row) for row in rows])   # [b, dim]
            step_logits = self.model.mlp.head(tf.nn.relu(looked_up + tf.gather(cond, i, axis=1)))
            sample = sample_categorical(step_logits, self.inv_temp, tf.gather(uniform_rows, i))
            window = tf.concat([window[1:], sample[None]], axis=0)
            if self.return_logits:
                logits = xla.dynamic_update_slice(logits, step_logits[None], tf.stack([i, 0, 0]))
            return i + 1, window, logits

        logits = tf.zeros([f0, b, q] if self.return_logits else [], tf.float32)
        _, window, logits = tf.while_loop(lambda i, *_: i < f0, body,
                                          [tf.constant(0), window, logits],
                                          maximum_iterations=f0)
        return window, logits


class XlaEngine(GenerationLoop):
    """The whole loop under XLA; the bottom tier's upsampling is folded with the MLP's first
    hidden layer, so its conditioning costs one matrix product per bottom frame."""
    jit_compile = True

    def prepare(self, table, bias1, w1):
        bottom, dim, f0 = self.model.tiers[-1], self.model.dim, self.f0
        up_kernel = to_matmul_dtype(tf.reshape(
            tf.einsum("dfe,ek->dfk", tf.reshape(bottom.upsample_kernel, [dim, f0, dim]), w1),
            [dim, f0 * dim]), bottom.matmul_dtype)
        up_bias = tf.reshape(tf.matmul(tf.reshape(bottom.upsample_bias, [f0, dim]), w1) + bias1,
                             [f0 * dim])
        self.product = dot
        self.bottom_conditioning = lambda out: tf.reshape(
            dot(out, up_kernel, bottom.matmul_dtype) + up_bias, [self.batch, f0, dim])
        self.frame_samples = self.frame_samples_loop

    def new_buffer(self, primer):
        """The time-major buffer: `primer` `[P, b]` followed by room for the generated rows."""
        return tf.concat([primer, tf.zeros([self.num_gen, self.batch], tf.int32)], axis=0)

    def new_logits(self):
        shape = [self.num_gen, self.batch, self.model.q_levels] if self.return_logits else []
        return tf.zeros(shape, tf.float32)

    def window(self, buffer, pos, size):
        """Rows `[pos - size, pos)`: `[size, b]`."""
        return tf.slice(buffer, tf.stack([pos - size, 0]), [size, self.batch])

    def put_rows(self, buffer, rows, pos):
        # In place under XLA (XLA fuses a scatter into a loop that rewrites the whole buffer).
        start = [pos] + [0] * (len(rows.shape) - 1)
        return xla.dynamic_update_slice(buffer, rows, tf.stack(start))

    def stacked(self, buffer, logits):
        return buffer, logits


class StreamEngine(GenerationLoop):
    """The frame tiers as a TensorFlow graph over the `StreamMatMul` op, each bottom frame's
    samples through `SampleFrame` (see the module). Needs the ops (`compiled_op`)."""
    jit_compile = False

    def prepare(self, table, bias1, w1):
        model, b, f0, dim = self.model, self.batch, self.f0, self.model.dim
        bottom = model.tiers[-1]
        matmul_op = compiled_op("stream_matmul", dtype=bottom.matmul_dtype)
        self.product = stream_products(matmul_op, model.tiers, b)
        first_hidden = stream_matmul.PackedProducts(matmul_op, [w1], bottom.matmul_dtype, b * f0)

        def bottom_conditioning(out):
            # Upsampling, then the first hidden layer on all f0 vectors at once: folding the two
            # (as the XLA engine does) would cost 2 dim^3 f0 operations per call.
            up = tf.reshape(bottom.upsample(out, self.product), [b * f0, dim])
            return tf.reshape(first_hidden(up, w1, bottom.matmul_dtype) + bias1, [b, f0, dim])

        self.bottom_conditioning = bottom_conditioning
        frame_op = compiled_op("sample_frame", dtype=bottom.matmul_dtype)
        if frame_op is not None:
            self.frame_samples = self._frame_op_samples(frame_op, matmul_op)
        else:
            # As graph ops the loop's many small operations would cost more than the products.
            self.frame_samples = tf.function(self.frame_samples_loop, jit_compile=True,
                                             autograph=False)

    def _frame_op_samples(self, frame_op, matmul_op):
        """The `SampleFrame` op with the MLP's hidden and output kernels packed once (here,
        outside the loops); both products split between the threads."""
        mlp = self.model.mlp
        packed = [matmul_op.stream_pack(tf.convert_to_tensor(kernel, tf.float32),
                                        T=mlp.matmul_dtype)
                  for kernel in (mlp.hidden_kernel_2, mlp.output_kernel)]

        def frame_samples(window, cond, uniform_rows):
            return frame_op.sample_frame(self.table, cond, window, uniform_rows, self.inv_temp,
                                         packed[0], tf.convert_to_tensor(mlp.hidden_bias_2),
                                         packed[1], tf.convert_to_tensor(mlp.output_bias))

        return frame_samples

    def new_buffer(self, primer):
        total = primer.shape[0] + self.num_gen
        array = tf.TensorArray(tf.int32, size=total, element_shape=[self.batch])
        return array.scatter(tf.range(primer.shape[0]), primer) if primer.shape[0] else array

    def new_logits(self):
        return tf.TensorArray(tf.float32, size=self.num_gen,
                              element_shape=[self.batch, self.model.q_levels])

    def window(self, buffer, pos, size):
        return tf.ensure_shape(buffer.gather(tf.range(pos - size, pos)), [size, self.batch])

    def put_rows(self, buffer, rows, pos):
        return buffer.scatter(tf.range(pos, pos + tf.shape(rows)[0]), rows)

    def stacked(self, buffer, logits):
        return buffer.stack(), logits.stack() if self.return_logits else tf.zeros([])


ENGINE_CLASSES = {"xla": XlaEngine, "stream": StreamEngine}
