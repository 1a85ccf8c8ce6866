"""SampleRNN building blocks: recurrent stacks with explicit state, frame tiers, sample-level MLP.

All recurrence is explicit: layers take the previous state as an argument and return the new one
(no `stateful=True`). Each layer offers a sequence path (`call`, used for training and for
priming the sampler on a seed) and the per-step pieces the compiled sampler reuses, so both paths
share one set of weights and one cell formula.
"""
import keras
import tensorflow as tf

from audiogen.precision import add_bias, dense_relu, dot, matmul_dtype, to_matmul_dtype
from audiogen.samplernn.gru import gru_sequence

RNN_TYPES = ("gru", "lstm")


def levels_to_inputs(levels, q_levels):
    """Quantized levels `[...]` int -> float32 network inputs in [-1, 1], linear in the level.

    Frame tiers read samples in the quantized (for mu-law: companded) domain, scaled linearly to
    [-1, 1], as in the reference implementation; mu-law's expanded amplitudes would crowd near 0.
    """
    return tf.cast(levels, tf.float32) * (2.0 / (q_levels - 1)) - 1.0


class RNNStack(keras.layers.Layer):
    """`num_layers` GRU or LSTM layers of `units`, with explicit and learned initial state.

    GRU follows the cuDNN/Keras `reset_after` form (gates z, r, n; `h' = z*h + (1-z)*n`), LSTM
    the usual i, f, c, o form with forget-gate bias 1. With `skip_conn`, every layer after the
    first also receives the stack input through its own kernel, and the stack output is the sum
    of all layer outputs (skip connections as in Graves 2013, "Generating Sequences With RNNs");
    without it, layers are chained and the output is the last layer's.

    Args:
        units: int, width of the input, of every layer and of the output.
        num_layers: int >= 1.
        rnn_type: `"gru"` or `"lstm"`.
        skip_conn: bool.
        precision: `"float32"` or `"mixed_bfloat16"` (matrix products in bfloat16, see
            `audiogen.precision`).

    Call: `call(x, states) -> (outputs, new_states)` with `x` `[batch, time, units]`, `states` a
    list of `[batch, units]` tensors (per layer: `h` for GRU; `h, c` for LSTM), `outputs`
    `[batch, time, units]`.
    """

    def __init__(self, units, num_layers, rnn_type="gru", skip_conn=False, precision="float32",
                 **kwargs):
        super().__init__(**kwargs)
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {RNN_TYPES}, got {rnn_type!r}")
        self.matmul_dtype = matmul_dtype(precision)
        # === Config ===
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.rnn_type = rnn_type
        self.skip_conn = bool(skip_conn)
        self.precision = precision

    @property
    def gates(self):
        return 3 if self.rnn_type == "gru" else 4

    @property
    def states_per_layer(self):
        return 1 if self.rnn_type == "gru" else 2

    @property
    def num_states(self):
        return self.num_layers * self.states_per_layer

    def build(self, input_shape=None):
        if self.built:
            return
        # Weights are plain attributes (kernel_0, ...), not lists: tf.train.Checkpoint tracks
        # attributes of Keras 3 layers but not the lists Keras wraps.
        u, g = self.units, self.gates * self.units
        for i in range(self.num_layers):
            self._add(f"kernel_{i}", (u, g), "glorot_uniform")
            self._add(f"recurrent_kernel_{i}", (u, g), "orthogonal")
            if self.rnn_type == "lstm":   # forget-gate bias 1
                bias_init = keras.initializers.Constant([0.0] * u + [1.0] * u + [0.0] * (2 * u))
            else:
                bias_init = "zeros"
            self._add(f"bias_{i}", (g,), bias_init)
            if self.rnn_type == "gru":
                self._add(f"recurrent_bias_{i}", (g,), "zeros")
            if self.skip_conn and i > 0:
                self._add(f"skip_kernel_{i}", (u, g), "glorot_uniform")
            for s in ("h", "c")[:self.states_per_layer]:
                self._add(f"initial_{s}_{i}", (1, u), "zeros")
        self.built = True

    def _add(self, name, shape, initializer):
        setattr(self, name, self.add_weight(shape=shape, initializer=initializer, name=name))

    def _w(self, name, i):
        return getattr(self, f"{name}_{i}")

    @property
    def step_kernels(self):
        """The weights `step` multiplies by (for a sampler that prepares them once per call)."""
        names = ("kernel", "recurrent_kernel", "skip_kernel")
        return [self._w(n, i) for i in range(self.num_layers) for n in names
                if hasattr(self, f"{n}_{i}")]

    @property
    def initial_state_vars(self):
        return [self._w(f"initial_{s}", i) for i in range(self.num_layers)
                for s in ("h", "c")[:self.states_per_layer]]

    def initial_states(self, batch_size):
        """The learned initial states broadcast to `[batch_size, units]`."""
        return [tf.broadcast_to(tf.convert_to_tensor(v), [batch_size, self.units])
                for v in self.initial_state_vars]

    def _layer_state(self, states, i):
        n = self.states_per_layer
        return list(states[i * n:(i + 1) * n])

    def cell(self, i, gx, state, product=dot):
        """One step of layer `i`: `gx` = input pre-activations `[batch, gates*units]`.

        `product(x, kernel, dtype)` computes the matrix products (`precision.dot`, or the
        sampler's `PackedProducts`)."""
        h = state[0]
        if self.rnn_type == "gru":
            gh = product(h, self._w("recurrent_kernel", i), self.matmul_dtype) \
                + self._w("recurrent_bias", i)
            xz, xr, xn = tf.split(gx, 3, axis=-1)
            hz, hr, hn = tf.split(gh, 3, axis=-1)
            z = tf.sigmoid(xz + hz)
            r = tf.sigmoid(xr + hr)
            n = tf.tanh(xn + r * hn)
            h = z * h + (1.0 - z) * n
            return h, [h]
        c = state[1]
        gates = gx + product(h, self._w("recurrent_kernel", i), self.matmul_dtype)
        gi, gf, gc, go = tf.split(gates, 4, axis=-1)
        c = tf.sigmoid(gf) * c + tf.sigmoid(gi) * tf.tanh(gc)
        h = tf.sigmoid(go) * tf.tanh(c)
        return h, [h, c]

    @property
    def input_kernels(self):
        """The kernels the stack input is multiplied by: layer 0's kernel, then, with
        `skip_conn`, the skip kernel of every later layer (`step`'s `input_terms`)."""
        skips = range(1, self.num_layers) if self.skip_conn else []
        return [self.kernel_0] + [self._w("skip_kernel", i) for i in skips]

    def input_preactivations(self, i, layer_input, stack_input, product=dot, input_term=None):
        """`x @ kernel + bias` (+ the skip kernel on the stack input); any leading dims.
        `input_term`: the stack input's product with layer i's `input_kernels` entry, if
        already computed (then `stack_input`, and for layer 0 `layer_input`, are not used)."""
        if i == 0 and input_term is not None:
            return input_term + self.bias_0
        gx = product(layer_input, self._w("kernel", i), self.matmul_dtype) + self._w("bias", i)
        if self.skip_conn and i > 0:
            gx = gx + (input_term if input_term is not None else
                       product(stack_input, self._w("skip_kernel", i), self.matmul_dtype))
        return gx

    def call(self, x, states):
        new_states, output = [], None
        layer_input = x
        for i in range(self.num_layers):
            gx = self.input_preactivations(i, layer_input, x)       # [B, T, G], all steps at once
            gx = tf.transpose(gx, [1, 0, 2])                          # time-major
            init = tuple(self._layer_state(states, i))
            if self.rnn_type == "gru" and gx.shape[0] is not None:
                seq = (gru_sequence(gx, self._w("recurrent_kernel", i),
                                    self._w("recurrent_bias", i), init[0], self.matmul_dtype),)
            else:
                def step(carry, gx_t, i=i):
                    _, new = self.cell(i, gx_t, list(carry))
                    return tuple(new)

                seq = tf.scan(step, gx, initializer=init)             # tuple of [T, B, U]
            new_states += [s[-1] for s in seq]
            layer_input = tf.transpose(seq[0], [1, 0, 2])
            output = layer_input if output is None or not self.skip_conn else output + layer_input
        return output, new_states

    def step(self, x, states, product=dot, input_terms=None):
        """One time step: `x` `[batch, units]` -> (`[batch, units]`, new states); `product` as
        in `cell`. `input_terms`: `x`'s products with `input_kernels`, if already computed (a
        sampler folds the tier's input projection into them; `x` is then not used)."""
        new_states, output = [], None
        layer_input = x
        for i in range(self.num_layers):
            term = input_terms[i] if input_terms is not None and (i == 0 or self.skip_conn) \
                else None
            gx = self.input_preactivations(i, layer_input, x, product, term)
            layer_input, new = self.cell(i, gx, self._layer_state(states, i), product)
            new_states += new
            output = layer_input if output is None or not self.skip_conn else output + layer_input
        return output, new_states

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, num_layers=self.num_layers, rnn_type=self.rnn_type,
                      skip_conn=self.skip_conn, precision=self.precision)
        return config


class FrameTier(keras.layers.Layer):
    """One frame-level tier: frames of `frame_size` samples in, `upsample_ratio` vectors out per frame.

    Per step: `inp = frame @ W_in + b_in (+ conditioning from the tier above)`, an `RNNStack`, and a
    learned linear upsampling `out @ W_up + b_up` reshaped to `upsample_ratio` vectors of `dim`
    (the conditioning of the tier below, or of the sample-level MLP for the bottom tier).

    Args:
        frame_size: int, samples per frame.
        upsample_ratio: int, vectors emitted per frame (frame_size / frame size of the tier below;
            the bottom tier's is frame_size itself: one vector per sample).
        dim, rnn_type, num_rnn_layers, skip_conn, precision: as in `RNNStack`.

    Call: `call(frames, cond, states) -> (upsampled, new_states)` with `frames`
    `[batch, steps, frame_size]` float, `cond` `[batch, steps, dim]` or None,
    `upsampled` `[batch, steps * upsample_ratio, dim]`.
    """

    def __init__(self, frame_size, upsample_ratio, dim, rnn_type="gru", num_rnn_layers=1,
                 skip_conn=False, precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.matmul_dtype = matmul_dtype(precision)
        # === Config ===
        self.frame_size = int(frame_size)
        self.upsample_ratio = int(upsample_ratio)
        self.dim = int(dim)
        self.rnn_type = rnn_type
        self.num_rnn_layers = int(num_rnn_layers)
        self.skip_conn = bool(skip_conn)
        self.precision = precision
        # === Layers ===
        self.rnn = RNNStack(dim, num_rnn_layers, rnn_type, skip_conn, precision, name="rnn")

    def build(self, input_shape=None):
        if self.built:
            return
        d = self.dim
        self.input_kernel = self.add_weight(shape=(self.frame_size, d),
                                            initializer="glorot_uniform", name="input_kernel")
        self.input_bias = self.add_weight(shape=(d,), initializer="zeros", name="input_bias")
        self.rnn.build()
        self.upsample_kernel = self.add_weight(
            shape=(d, self.upsample_ratio * d), initializer="glorot_uniform",
            name="upsample_kernel")
        self.upsample_bias = self.add_weight(shape=(self.upsample_ratio * d,),
                                             initializer="zeros", name="upsample_bias")
        self.built = True

    def project(self, frames, cond):
        inp = dot(frames, self.input_kernel, self.matmul_dtype) + self.input_bias
        return inp if cond is None else inp + cond

    def upsample(self, out, product=dot):
        """`[..., dim]` -> `[..., upsample_ratio * dim]` (reshape to split the vectors);
        `product` as in `RNNStack.cell`."""
        return product(out, self.upsample_kernel, self.matmul_dtype) + self.upsample_bias

    def call(self, frames, cond, states):
        out, new_states = self.rnn(self.project(frames, cond), states)
        up = self.upsample(out)
        batch, steps = tf.shape(up)[0], up.shape[1]
        return tf.reshape(up, [batch, steps * self.upsample_ratio, self.dim]), new_states

    def get_config(self):
        config = super().get_config()
        config.update(frame_size=self.frame_size, upsample_ratio=self.upsample_ratio,
                      dim=self.dim, rnn_type=self.rnn_type, num_rnn_layers=self.num_rnn_layers,
                      skip_conn=self.skip_conn, precision=self.precision)
        return config


@tf.custom_gradient
def frame_lookup_sum(table, levels):
    """`sum_j table[j, levels[:, t + j]]` for every t: the sample-level MLP's input layer.

    Args: `table` `[frame_size, q_levels, dim]` float, `levels` `[batch, T + frame_size - 1]` int.
    Returns `[batch, T, dim]`.

    The gradient is written by hand: one `unsorted_segment_sum` per position j into that
    position's `[q_levels, dim]` slice. Automatic differentiation of the gathers builds the same
    sums from sparse slices of the whole table, which under XLA on CPU took ~12x longer and was
    the largest cost of a training step.
    """
    frame_size, q_levels = table.shape[0], table.shape[1]
    steps = levels.shape[1] - frame_size + 1
    windows = [levels[:, j:j + steps] for j in range(frame_size)]
    out = tf.add_n([tf.gather(table[j], w) for j, w in enumerate(windows)])

    def grad(d_out):
        d_table = tf.stack([tf.math.unsorted_segment_sum(d_out, w, q_levels) for w in windows])
        return d_table, None

    return out, grad


class SampleMLP(keras.layers.Layer):
    """Sample-level MLP: predicts each sample from the previous `frame_size` samples + conditioning.

    `h0 = concat(embedding(previous frame_size levels)) @ W_in + b_in + cond` (a width-`frame_size`
    convolution over the embedded sequence, computed as lookups into `embedding @ W_in[j]`), then
    two `dim` ReLU layers and a `q_levels` output.

    Args:
        frame_size: int, the bottom tier's frame size (samples of context).
        dim: int, hidden width.
        q_levels: int, number of quantization levels (output classes).
        emb_size: int, embedding width.
        precision: as in `RNNStack`.

    Call: `call(levels, cond) -> logits` with `levels` `[batch, T + frame_size - 1]` int (the
    samples preceding each target), `cond` `[batch, T, dim]`, `logits` `[batch, T, q_levels]`.
    """

    def __init__(self, frame_size, dim, q_levels, emb_size, precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.matmul_dtype = matmul_dtype(precision)
        # === Config ===
        self.frame_size = int(frame_size)
        self.dim = int(dim)
        self.q_levels = int(q_levels)
        self.emb_size = int(emb_size)
        self.precision = precision

    def build(self, input_shape=None):
        if self.built:
            return
        d = self.dim
        self.embedding = self.add_weight(
            shape=(self.q_levels, self.emb_size),
            initializer=keras.initializers.RandomNormal(stddev=1.0), name="embedding")
        self.input_kernel = self.add_weight(
            shape=(self.frame_size, self.emb_size, d), initializer="glorot_uniform",
            name="input_kernel")
        self.input_bias = self.add_weight(shape=(d,), initializer="zeros", name="input_bias")
        self.hidden_kernel_1 = self.add_weight(shape=(d, d), initializer="he_uniform",
                                               name="hidden_kernel_1")
        self.hidden_bias_1 = self.add_weight(shape=(d,), initializer="zeros",
                                             name="hidden_bias_1")
        self.hidden_kernel_2 = self.add_weight(shape=(d, d), initializer="he_uniform",
                                               name="hidden_kernel_2")
        self.hidden_bias_2 = self.add_weight(shape=(d,), initializer="zeros",
                                             name="hidden_bias_2")
        self.output_kernel = self.add_weight(shape=(d, self.q_levels),
                                             initializer="glorot_uniform", name="output_kernel")
        self.output_bias = self.add_weight(shape=(self.q_levels,), initializer="zeros",
                                           name="output_bias")
        self.built = True

    def input_table(self):
        """`embedding @ input_kernel[j]` for every position j: `[frame_size, q_levels, dim]`."""
        dtype = self.matmul_dtype
        # A broadcast batch matmul: oneDNN's einsum took ~2x as long (generation folds this
        # table once per call, at dim 1024 32 vs 18 ms in float32).
        table = tf.matmul(to_matmul_dtype(self.embedding, dtype)[None],
                          to_matmul_dtype(self.input_kernel, dtype))
        return tf.cast(table, tf.float32)

    def call(self, levels, cond):
        # The input layer as `frame_size` lookups into a per-position table instead of a
        # convolution over embeddings: q*emb*dim*frame_size MACs once per call instead of
        # emb*dim*frame_size per sample (the largest cost of training otherwise).
        h = add_bias(cond + frame_lookup_sum(self.input_table(), levels), self.input_bias)
        return self.head(dense_relu(h, self.hidden_kernel_1, self.hidden_bias_1,
                                    self.matmul_dtype))

    def head(self, h1):
        """From the first ReLU layer's output `[..., dim]` to logits `[..., q_levels]`."""
        h = dense_relu(h1, self.hidden_kernel_2, self.hidden_bias_2, self.matmul_dtype)
        return add_bias(dot(h, self.output_kernel, self.matmul_dtype), self.output_bias)

    def folded_tables(self):
        """The input layer and first hidden layer folded into lookups (for the sampler).

        Since no nonlinearity sits between them, `relu((sum_j E[x_j] @ W_in[j] + b_in + cond)
        @ W_1 + b_1)` equals `relu(sum_j T[j, x_j] + cond @ W_1 + b)` with
        `T = (E @ W_in[j]) @ W_1` `[frame_size, q_levels, dim]` and `b = b_in @ W_1 + b_1`.
        Returns `(T, b, W_1)`. `T` is computed in the precision's matmul dtype (as the training
        path multiplies by `W_1`; 8.6 GFLOP per call at dim 1024).
        """
        table = dot(self.input_table(), self.hidden_kernel_1, self.matmul_dtype)
        bias = tf.linalg.matvec(self.hidden_kernel_1, self.input_bias, transpose_a=True) \
            + self.hidden_bias_1
        return table, bias, self.hidden_kernel_1

    def get_config(self):
        config = super().get_config()
        config.update(frame_size=self.frame_size, dim=self.dim, q_levels=self.q_levels,
                      emb_size=self.emb_size, precision=self.precision)
        return config
