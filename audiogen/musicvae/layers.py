"""MusicVAE layers: bidirectional LSTM encoder, flat decoder, conductor and hierarchical decoder.

Recurrent state is explicit everywhere: the LSTMs are `keras.layers.LSTMCell` stacks stepped by
`tf.while_loop`s written here (no `stateful=True`, no Python loop over time at run time).

Two ways to run a decoder, sharing the same weights:

* `teacher_forced(x, z)` (also `call`): the fast path when the decoder is fed the truth at every
  step. Each LSTM layer runs over the whole sequence at once: its input projection is one big
  matmul, only the recurrent matmul is inside the loop, and in the hierarchical decoder the
  subsequences (each starting from its own state) are run side by side as one batch of
  `batch * n_subsequences` short sequences.
* `step_loop(z, ...)`: one `tf.while_loop` over the time steps with the whole stack stepped per
  step; needed whenever the input of step t depends on the output of step t-1 (scheduled sampling,
  free-running generation). Same logits as the fast path when fed the truth (tested). Training
  with scheduled sampling runs it forward only, to choose the inputs, then trains the fast path
  on those inputs (`MusicVAE._forward`).

`precision="mixed_bfloat16"` runs the LSTMs' matrix products (input projections and recurrent
products, forward and backward) in bfloat16 with float32 results, states and gates
(`audiogen.precision`); the dense layers stay float32.

Token vocabulary (the melody data contract): 90 classes, 0 = no event, 1 = note-off,
2..89 = MIDI pitches 21..108.

Reference: Roberts et al., "A Hierarchical Latent Vector Model for Learning Long-Term Structure in
Music", ICML 2018.
"""
import keras
import tensorflow as tf
# Tells whether the graph being built is compiled by XLA (which cannot run custom ops).
from tensorflow.python.ops import control_flow_util

from audiogen.kernels import lstm_cell
from audiogen.precision import column_sums, dot, matmul, matmul_dtype, to_matmul_dtype

VOCAB_SIZE = 90


# --- recurrent helpers --------------------------------------------------------------------------
#
# Sequences are time-major `[time, batch, features]` inside the whole-sequence path, so that an
# input projection is one plain matmul `[time * batch, features] @ kernel` (and its gradient two
# plain matmuls). The loop itself runs in one of two layouts, chosen by batch size and product
# dtype (`_feature_major_for`, measured on a 2-core AVX-512 CPU):
#
# * feature-major for float32 products and small batches: projections `[time, 4 units, batch]`,
#   state `[units, batch]`. The recurrent matmul of a step is then `R^T [4 units, units] @ h
#   [units, batch]`, the large weight on the left, which oneDNN runs markedly faster than `h @ R`
#   at batch 32-64; the gates are contiguous row blocks and the backward step `R @ dz` needs no
#   transposed R. This costs a transpose of the projections before the loop and of their
#   gradient after it.
# * batch-major otherwise: large batches (the hierarchical decoder's batch * n_subsequences rows),
#   where the matmuls are efficient either way, and bfloat16 products (train step with the fused
#   cell ops, steps alternated in one process: flat 2-bar 253 -> 236 ms, hierarchical 16-bar
#   1,429 -> 1,232 ms, median): no transposes at all.
#
# Loop variables: the data-dependent ones (the input projections of the forward loop, the saved
# activations of the backward loop) come first. While compiling, XLA's oneDNN matmul rewriter
# tries to constant-fold the operands of every matmul, which evaluates a while loop's initial
# values in order until one depends on the data; large zero-initialised TensorArrays placed first
# made the 16-bar train step spend ~12 s of its compilation there.

_FEATURE_MAJOR_MAX_BATCH = 256


def _feature_major_for(batch, dtype):
    """Loop layout of the whole-sequence LSTM for this (static or dynamic) batch size and product
    dtype."""
    if dtype != tf.float32:
        return False
    return not (isinstance(batch, int) and batch >= _FEATURE_MAJOR_MAX_BATCH)


def _static_or_dynamic(tensor, axis):
    static = tensor.shape[axis]
    return static if static is not None else tf.shape(tensor)[axis]


def _check_default_activations(cell):
    names = (getattr(cell.activation, "__name__", ""),
             getattr(cell.recurrent_activation, "__name__", ""))
    if names != ("tanh", "sigmoid"):
        raise ValueError(f"{cell.name}: the whole-sequence LSTM path supports the default "
                         f"tanh / sigmoid activations only, got {names}")


def _zeros_for_none(values, like):
    return [tf.zeros_like(ref) if v is None else v for v, ref in zip(values, like)]


def _swap_last(x):
    """`[time, a, b]` -> `[time, b, a]`."""
    return tf.transpose(x, [0, 2, 1])


def _flat(x):
    """`[time, batch, features]` -> `[time * batch, features]`."""
    return tf.reshape(x, [-1, x.shape[-1]])


def _tf_cell_forward(x, r, c, gate_axis, dtype):
    """One LSTM step's element-wise part with TensorFlow's operations: `x` the input projection
    with the bias, `r` the recurrent product (in `dtype`), `c` the incoming cell state. Returns
    `h`, `h` in `dtype`, the new `c`, and what the backward step reads (`_tf_cell_backward`)."""
    z = x + tf.cast(r, tf.float32)
    z_i, z_f, z_g, z_o = tf.split(z, 4, axis=gate_axis)
    i, f, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.sigmoid(z_o)
    g = tf.tanh(z_g)
    c_new = f * c + i * g
    tanh_c = tf.tanh(c_new)
    h = o * tanh_c
    return h, to_matmul_dtype(h, dtype), c_new, (i, f, g, o, tanh_c, c)


def _tf_cell_backward(saved, d_out, dh_rec, dc, gate_axis, dtype):
    """The gradient of `_tf_cell_forward`: `d_out` and `dh_rec` (in `dtype`) the gradients of
    `h`, `dc` of the new `c`. Returns the gradient of `z` (also in `dtype`) and of the incoming
    `c`."""
    i, f, g, o, tanh_c, c_prev = saved
    dh = d_out + tf.cast(dh_rec, tf.float32)
    dc = dc + dh * o * (1.0 - tf.square(tanh_c))
    dz = tf.concat([dc * g * i * (1.0 - i),
                    dc * c_prev * f * (1.0 - f),
                    dc * i * (1.0 - tf.square(g)),
                    dh * tanh_c * o * (1.0 - o)], axis=gate_axis)
    return dz, to_matmul_dtype(dz, dtype), dc * f


def _fused_cell_steps(ops):
    """The same two functions as one compiled op each (`audiogen.kernels.lstm_cell`)."""
    def forward(x, r, c, gate_axis, dtype):
        h, h_low, c_new, saved = ops.lstm_cell_forward(x, r, c, gate_axis=gate_axis)
        return h, h_low, c_new, (saved,)

    def backward(saved, d_out, dh_rec, dc, gate_axis, dtype):
        return ops.lstm_cell_backward(saved[0], d_out, dh_rec, dc, gate_axis=gate_axis)

    return forward, backward


def _cell_steps():
    """`(forward, backward, saved_count)` for LSTM steps in the graph being built: the compiled
    ops where they can run (not inside an XLA-compiled function), else TensorFlow's operations."""
    if not control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
        ops = lstm_cell.load()
        if ops is not None:
            return (*_fused_cell_steps(ops), 1)
    return _tf_cell_forward, _tf_cell_backward, 6


def _lstm_recurrence(n, feature_major, dtype=tf.float32):
    """The recurrent part of `n` LSTMs in lockstep, with a hand-written gradient.

    Takes `n` input projections `[time, batch, 4 units]` (without bias; already reversed in time
    for backward LSTMs), `n` recurrent kernels `[units, 4 units]`, `n` biases `[4 units]` and `n`
    initial `h`, `c` `[batch, units]`; returns the `n` stacked outputs `[time, batch, units]`,
    then the `n` final `h` and the `n` final `c`. `feature_major` picks the layout of the loop
    (see the notes above); the results do not depend on it. The products run in `dtype` (the
    kernels are cast once per call). A step's element-wise part is one compiled op forward and
    one backward where they can run (`_cell_steps`).

    The backward pass walks time once with one matmul per step (`dh_{t-1} = dz_t R^T`); the
    gradients of the recurrent kernel, `sum_t h_{t-1}^T dz_t`, and of the bias are then computed
    for all steps at once after the loop (one large matmul each) instead of being accumulated
    inside it (what automatic differentiation of the loop would do).
    """
    gate_axis = 0 if feature_major else 1
    to_loop = _swap_last if feature_major else (lambda x: x)          # [T, N, F] <-> loop layout
    state_to_loop = tf.transpose if feature_major else (lambda x: x)  # [N, H] <-> loop layout

    @tf.custom_gradient
    def recurrence(*args):
        projs, kernels, biases = args[:n], args[n:2 * n], args[2 * n:3 * n]
        h0s, c0s = args[3 * n:4 * n], args[4 * n:]
        cell_forward, cell_backward, saved_count = _cell_steps()
        steps = _static_or_dynamic(projs[0], 0)
        low = [to_matmul_dtype(k, dtype) for k in kernels]    # once per call
        if feature_major:
            kernels_t = [tf.transpose(k) for k in low]        # [4H, H]
            biases = [b[:, None] for b in biases]

            def recurrent(k, h):
                return tf.matmul(kernels_t[k], h)

            def recurrent_grad(k, dz):
                return tf.matmul(low[k], dz)
        else:
            def recurrent(k, h):
                return tf.matmul(h, low[k])

            def recurrent_grad(k, dz):
                return tf.matmul(dz, low[k], transpose_b=True)
        # Inputs and output gradients are read a step at a time by slicing (a leading-axis slice
        # shares the tensor's buffer): a TensorArray's unstack would copy them first.
        xs = [to_loop(p) + b for p, b in zip(projs, biases)]

        def body(t, xs, hs, cs, h_ta, saved_ta):
            out = ([], [], [], [])
            for k in range(n):
                h, h_low, c, saved = cell_forward(xs[k][t], recurrent(k, hs[k]), cs[k],
                                                  gate_axis, dtype)
                saved = [ta.write(t, v) for ta, v in zip(saved_ta[k], saved)]
                for lst, value in zip(out, (h_low, c, h_ta[k].write(t, h), saved)):
                    lst.append(value)
            return (t + 1, xs) + out

        # What the backward pass reads per step stays in TensorArrays from one loop to the other
        # (no stacking and unstacking copies).
        saved_arrays = [[tf.TensorArray(tf.float32, size=steps) for _ in range(saved_count)]
                        for _ in range(n)]
        h_arrays = [tf.TensorArray(tf.float32, size=steps) for _ in range(n)]
        init_h = [to_matmul_dtype(state_to_loop(h), dtype) for h in h0s]
        init_c = [state_to_loop(c) for c in c0s]
        # The inputs come first among the loop variables (see the note at the top of this part).
        _, _, _, c_last, h_ta, saved_ta = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), xs, init_h, init_c, h_arrays, saved_arrays),
            maximum_iterations=steps)
        outputs = [to_loop(ta.stack()) for ta in h_ta]          # [T, N, H]

        def grad(*upstream):
            d_outs = [to_loop(d) for d in _zeros_for_none(upstream[:n], outputs)]
            # The final h's gradient joins the last step's output gradient.
            d_outs = [tf.concat([d[:-1], d[-1:] + state_to_loop(dh)[None]], axis=0)
                      for d, dh in zip(d_outs, _zeros_for_none(upstream[n:2 * n], h0s))]
            d_c_last = [state_to_loop(d) for d in _zeros_for_none(upstream[2 * n:], c0s)]
            dh_init = [tf.zeros_like(h) for h in init_h]
            dz_arrays = [tf.TensorArray(tf.float32, size=steps) for _ in range(n)]

            def back(j, saved_ta, d_out, dhs, dcs, dz_ta):
                t = steps - 1 - j
                new_dh, new_dc, new_dz = [], [], []
                for k in range(n):
                    dz, dz_low, dc = cell_backward([ta.read(t) for ta in saved_ta[k]],
                                                   d_out[k][t], dhs[k], dcs[k],
                                                   gate_axis, dtype)
                    new_dh.append(recurrent_grad(k, dz_low))
                    new_dc.append(dc)
                    new_dz.append(dz_ta[k].write(t, dz))
                return j + 1, saved_ta, d_out, new_dh, new_dc, new_dz

            # Saved activations first, the (possibly all-zero) output gradients after them.
            _, _, _, dh0, dc0, dz_ta = tf.while_loop(
                lambda j, *_: j < steps, back,
                (tf.constant(0), saved_ta, d_outs, dh_init, d_c_last, dz_arrays),
                maximum_iterations=steps)
            d_projs, d_kernels, d_biases = [], [], []
            for k in range(n):
                dz = to_loop(dz_ta[k].stack())                                # [T, N, 4H]
                h_prev = tf.concat([h0s[k][None], outputs[k][:-1]], axis=0)   # [T, N, H]
                d_kernels.append(matmul(_flat(h_prev), _flat(dz), dtype, transpose_a=True))
                d_biases.append(column_sums(dz))
                d_projs.append(dz)
            return (tuple(d_projs) + tuple(d_kernels) + tuple(d_biases)
                    + tuple(state_to_loop(tf.cast(d, tf.float32)) for d in dh0)
                    + tuple(state_to_loop(d) for d in dc0))

        return (tuple(outputs) + tuple(out[-1] for out in outputs)
                + tuple(state_to_loop(c) for c in c_last)), grad

    return recurrence


def _project(cell, x, constant=None, dtype=tf.float32):
    """Input projection of a whole time-major sequence `x` `[time, batch, features]` ->
    `[time, batch, 4 units]` (without bias), computed in `dtype`. `constant`
    (`[batch, const_features]`) is an input repeated at every step after `x` on the feature
    axis: it is projected once."""
    width = x.shape[-1]
    kernel = cell.kernel[:width] if constant is not None else cell.kernel
    p = matmul(_flat(x), kernel, dtype)
    p = tf.reshape(p, tf.concat([tf.shape(x)[:2], [4 * cell.units]], axis=0))
    if constant is not None:
        p = p + matmul(constant, cell.kernel[width:], dtype)[None]
    return p


def _bias(cell):
    if cell.use_bias:
        return tf.convert_to_tensor(cell.bias)
    return tf.zeros([4 * cell.units])


def _run_lstm(cells, projections, states, dtype=tf.float32):
    """Run built LSTMCells over whole time-major sequences in one `tf.while_loop` (lockstep).

    Args:
        cells: `n` built `keras.layers.LSTMCell`s with the default activations.
        projections: `n` input projections `[time, batch, 4 units_k]` from `_project`, each in
            the order its cell walks time.
        states: `n` pairs `(h, c)`, each `[batch, units_k]`.
        dtype: dtype of the recurrent products (float32 or bfloat16).
    Returns:
        `(outputs, final_states)`: `n` outputs `[time, batch, units_k]` (in walking order) and
        `n` pairs `(h, c)`.
    """
    n = len(cells)
    for cell in cells:
        _check_default_activations(cell)
    feature_major = _feature_major_for(projections[0].shape[1], dtype)
    results = _lstm_recurrence(n, feature_major, dtype)(
        *projections, *[tf.convert_to_tensor(cell.recurrent_kernel) for cell in cells],
        *[_bias(cell) for cell in cells], *[s[0] for s in states], *[s[1] for s in states])
    return list(results[:n]), list(zip(results[n:2 * n], results[2 * n:]))


def run_lstm_sequences(cells, inputs, states, reverse=None, constants=None,
                       dtype=tf.float32):
    """Run built LSTMCells over whole sequences in one `tf.while_loop` (in lockstep).

    Each cell k gets its own input `inputs[k]` (`[batch, time, features_k]`, all the same time
    length) and initial state `states[k] = (h, c)`; cells with `reverse[k]` walk time backwards
    (their outputs are returned in the original time order). Input projections are computed for
    all steps at once before the loop, and the loop has a hand-written gradient (see
    `_lstm_recurrence`). `constants[k]` (optional, `[batch, const_features_k]`) is an input
    repeated at every step, as if concatenated after `inputs[k]` on the feature axis; it is
    projected once instead of once per step. The matrix products run in `dtype`.

    Returns:
        `(outputs, final_states)`: lists of `[batch, time, units_k]` and `(h, c)`.
    """
    n = len(cells)
    reverse = reverse or [False] * n
    constants = constants or [None] * n
    projections = []
    for cell, x, const, backwards in zip(cells, inputs, constants, reverse):
        x = tf.transpose(x, [1, 0, 2])  # time major
        projections.append(_project(cell, tf.reverse(x, [0]) if backwards else x, const, dtype))
    outputs, finals = _run_lstm(cells, projections, states, dtype)
    outputs = [tf.transpose(tf.reverse(out, [0]) if backwards else out, [1, 0, 2])
               for out, backwards in zip(outputs, reverse)]
    return outputs, finals


class LSTMStack(keras.layers.Layer):
    """A stack of `n_layers` LSTMCells of `units`, with an explicit state.

    The state is a list of `(h, c)` pairs, one per layer, each `[batch, units]`.

    Args:
        units: int, cells per layer.
        n_layers: int, number of stacked layers.
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).
    """

    def __init__(self, units, n_layers, precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.matmul_dtype = matmul_dtype(precision)
        self.units = units
        self.n_layers = n_layers
        self.precision = precision
        # One attribute per cell (not a list): tf.train.Checkpoint does not track Keras 3 lists.
        for i in range(n_layers):
            setattr(self, f"cell_{i}", keras.layers.LSTMCell(units, name=f"lstm_cell_{i}"))

    @property
    def cells(self):
        return [getattr(self, f"cell_{i}") for i in range(self.n_layers)]

    def build(self, input_shape):
        size = input_shape[-1]
        for cell in self.cells:
            cell.build((None, size))
            size = self.units

    @property
    def state_size(self):
        """Number of floats per example in the flattened state (h and c of every layer)."""
        return 2 * self.units * self.n_layers

    def zero_state(self, batch_size):
        zeros = tf.zeros([batch_size, self.units])
        return [(zeros, zeros) for _ in self.cells]

    def state_from_flat(self, flat):
        """Split `[..., state_size]` (e.g. a dense + tanh of z) into the `(h, c)` list."""
        parts = tf.split(flat, 2 * self.n_layers, axis=-1)
        return [(parts[2 * i], parts[2 * i + 1]) for i in range(self.n_layers)]

    def step(self, x, states):
        """One time step: `x` `[batch, features]` -> (`[batch, units]`, new states)."""
        new_states = []
        for cell, (h, c) in zip(self.cells, states):
            x, (h, c) = cell(x, [h, c])
            new_states.append((h, c))
        return x, new_states

    def sequence(self, x, states, constant=None):
        """Whole sequence, layer by layer: `x` `[batch, time, features]` -> (`[batch, time,
        units]`, final states). `constant` (`[batch, features_c]`), if given, is an input of the
        bottom layer at every step, after `x` on the feature axis."""
        out, final = self.sequence_time_major(tf.transpose(x, [1, 0, 2]), states, constant)
        return tf.transpose(out, [1, 0, 2]), final

    def sequence_time_major(self, x, states, constant=None):
        """`sequence` on time-major sequences: `x` `[time, batch, features]` -> (`[time, batch,
        units]`, final states)."""
        final, dtype = [], self.matmul_dtype
        for cell, state in zip(self.cells, states):
            (x,), (state,) = _run_lstm([cell], [_project(cell, x, constant, dtype)], [state],
                                       dtype)
            constant = None
            final.append(state)
        return x, final

    def step_params(self, first_input_projected=False):
        """Per layer `(stacked kernel, recurrent kernel, bias)` as tensors, read once for a loop
        of `step_with_params` calls. The stacked kernel `[features + units, 4 units]` is the
        input kernel over the recurrent one, so that a step is one matmul of `[x, h]` (None for
        the bottom layer when `first_input_projected`). The kernels are in the matrix-product
        dtype of `precision`."""
        params = []
        for layer, cell in enumerate(self.cells):
            recurrent = tf.convert_to_tensor(cell.recurrent_kernel)
            stacked = (None if layer == 0 and first_input_projected else to_matmul_dtype(
                tf.concat([cell.kernel, recurrent], axis=0), self.matmul_dtype))
            params.append((stacked, to_matmul_dtype(recurrent, self.matmul_dtype), _bias(cell)))
        return params

    @staticmethod
    def step_with_params(params, x, states, first_input_projection=None):
        """One time step with the LSTMCell maths (the cells' default activations): `x`
        `[batch, features]` -> (`[batch, units]`, new states). `first_input_projection`
        (`[batch, 4 units]`), if given, replaces `x @ kernel` of the bottom layer (e.g. a
        projection computed before the loop; see `step_params`). The products run in the
        kernels' dtype."""
        new_states = []
        for layer, ((stacked, recurrent, bias), (h, c)) in enumerate(zip(params, states)):
            if layer == 0 and first_input_projection is not None:
                z = first_input_projection + matmul(h, recurrent, recurrent.dtype)
            else:
                z = matmul(tf.concat([x, h], axis=-1), stacked, stacked.dtype)
            z_i, z_f, z_g, z_o = tf.split(z + bias, 4, axis=-1)
            c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)
            x = h = tf.sigmoid(z_o) * tf.tanh(c)
            new_states.append((h, c))
        return x, new_states

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "n_layers": self.n_layers,
                       "precision": self.precision})
        return config


# --- encoder --------------------------------------------------------------------------------------

class Encoder(keras.layers.Layer):
    """Bidirectional LSTM encoder to the parameters of a diagonal Gaussian posterior q(z|x).

    embedding(90, embed_size) -> `n_layers` bidirectional LSTM layers of `hidden_size` (each
    layer reads the concatenated outputs of both directions of the layer below) -> the final `h`
    of the top layer's forward and backward directions, concatenated -> dense `mu` and
    dense + softplus `sigma`.

    Args:
        z_size: int, latent size.
        embed_size: int, token embedding size.
        hidden_size: int, LSTM units per direction.
        n_layers: int, bidirectional layers.
        vocab_size: int, number of token classes (90).
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).

    Call: `x` int `[batch, time]` -> `(mu, sigma)`, each `[batch, z_size]`.

    Reference: Roberts et al., ICML 2018, section 3.1.
    """

    def __init__(self, z_size, embed_size, hidden_size, n_layers, vocab_size=VOCAB_SIZE,
                 precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.matmul_dtype = matmul_dtype(precision)
        self.z_size = z_size
        self.embed_size = embed_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.vocab_size = vocab_size
        self.precision = precision
        # === Layers ===
        self.embedding = keras.layers.Embedding(vocab_size, embed_size, name="embedding")
        # One attribute per cell (not a list): tf.train.Checkpoint does not track Keras 3 lists.
        for i in range(n_layers):
            setattr(self, f"forward_{i}", keras.layers.LSTMCell(hidden_size, name=f"forward_{i}"))
            setattr(self, f"backward_{i}",
                    keras.layers.LSTMCell(hidden_size, name=f"backward_{i}"))
        self.mu_dense = keras.layers.Dense(z_size, name="mu")
        self.sigma_dense = keras.layers.Dense(z_size, activation="softplus", name="sigma")

    @property
    def forward_cells(self):
        return [getattr(self, f"forward_{i}") for i in range(self.n_layers)]

    @property
    def backward_cells(self):
        return [getattr(self, f"backward_{i}") for i in range(self.n_layers)]

    def build(self, input_shape=None):
        self.embedding.build(None)
        size = self.embed_size
        for fw, bw in zip(self.forward_cells, self.backward_cells):
            fw.build((None, size))
            bw.build((None, size))
            size = 2 * self.hidden_size
        self.mu_dense.build((None, 2 * self.hidden_size))
        self.sigma_dense.build((None, 2 * self.hidden_size))

    def call(self, x):
        h = tf.transpose(self.embedding(tf.cast(x, tf.int32)), [1, 0, 2])  # [T, B, E]
        zero = tf.zeros([tf.shape(x)[0], self.hidden_size])
        dtype = self.matmul_dtype
        for layer, (fw, bw) in enumerate(zip(self.forward_cells, self.backward_cells)):
            # The backward direction reads its input reversed in time; only its outputs, when a
            # next layer needs them, are reversed back.
            (out_fw, out_bw), ((h_fw, _), (h_bw, _)) = _run_lstm(
                [fw, bw], [_project(fw, h, dtype=dtype),
                           _project(bw, tf.reverse(h, [0]), dtype=dtype)],
                [(zero, zero), (zero, zero)], dtype)
            if layer + 1 < self.n_layers:
                h = tf.concat([out_fw, tf.reverse(out_bw, [0])], axis=-1)  # [T, B, 2H]
        last = tf.concat([h_fw, h_bw], axis=-1)
        return self.mu_dense(last), self.sigma_dense(last)

    def get_config(self):
        config = super().get_config()
        config.update({"z_size": self.z_size, "embed_size": self.embed_size,
                       "hidden_size": self.hidden_size, "n_layers": self.n_layers,
                       "vocab_size": self.vocab_size, "precision": self.precision})
        return config


# --- decoders -------------------------------------------------------------------------------------

class _AutoregressiveDecoder(keras.layers.Layer):
    """Shared core: an autoregressive LSTM stack over `n_segments` equal segments of the sequence.

    Segment j starts from a state given by dense + tanh of its conditioning vector `cond_j`, and
    `cond_j` is concatenated to every input of the segment; the previous token is carried across
    segment boundaries (a zero embedding before the first step). The flat decoder is the case of
    one segment conditioned on z; the hierarchical decoder conditions segment j on the conductor's
    j-th embedding.
    """

    def __init__(self, seq_len, embed_size, hidden_size, n_layers, n_segments, cond_size,
                 vocab_size=VOCAB_SIZE, precision="float32", **kwargs):
        super().__init__(**kwargs)
        if seq_len % n_segments:
            raise ValueError(
                f"seq_len ({seq_len}) must be divisible by n_subsequences ({n_segments}) for "
                f"the hierarchical decoder: each subsequence must have the same length "
                f"(e.g. choose n_subsequences among the divisors of {seq_len})")
        self.seq_len = seq_len
        self.embed_size = embed_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.vocab_size = vocab_size
        self.precision = precision
        self._n_segments = n_segments
        self._cond_size = cond_size
        # === Layers ===
        self.embedding = keras.layers.Embedding(vocab_size, embed_size, name="embedding")
        self.lstm = LSTMStack(hidden_size, n_layers, precision, name="lstm")
        self.initial_state = keras.layers.Dense(self.lstm.state_size, activation="tanh",
                                                name="initial_state")
        self.output_dense = keras.layers.Dense(vocab_size, name="logits")

    def _build_core(self):
        self.embedding.build(None)
        self.lstm.build((None, self.embed_size + self._cond_size))
        self.initial_state.build((None, self._cond_size))
        self.output_dense.build((None, self.hidden_size))

    def conditioning(self, z):
        """`z` `[batch, z_size]` -> per-segment conditioning `[batch, n_segments, cond_size]`."""
        raise NotImplementedError

    def teacher_forced(self, x, z):
        """Logits `[batch, seq_len, vocab]` when the input at step t is the true token t-1."""
        x = tf.cast(x, tf.int32)
        batch = tf.shape(x)[0]
        segs, seg_len = self._n_segments, self.seq_len // self._n_segments
        cond = self.conditioning(z)                                      # [B, S, D]
        emb = self.embedding(x)                                          # [B, T, E]
        prev = tf.concat([tf.zeros_like(emb[:, :1]), emb[:, :-1]], axis=1)
        # Segments side by side: [B*S, L, E], each with its constant input cond_j (the input of
        # step t is [prev_t, cond_j], as in `step_loop`).
        prev = tf.transpose(tf.reshape(prev, [batch * segs, seg_len, self.embed_size]),
                            [1, 0, 2])                                   # [L, B*S, E]
        cond = tf.reshape(cond, [batch * segs, self._cond_size])
        init = self.lstm.state_from_flat(self.initial_state(cond))
        out, _ = self.lstm.sequence_time_major(prev, init, constant=cond)  # [L, B*S, H]
        logits = self.output_dense(tf.transpose(out, [1, 0, 2]))         # [B*S, L, V]
        return tf.reshape(logits, [batch, self.seq_len, self.vocab_size])

    def call(self, x, z):
        return self.teacher_forced(x, z)

    def step_loop(self, z, targets=None, sample_probability=None, temperature=1.0, seed=(0, 0)):
        """Step-by-step decoding in one `tf.while_loop`.

        At each step a token is drawn from `softmax(logits / temperature)` (argmax where the
        example's temperature is <= 0). Without `targets` that token is the next input
        (free-running generation). With `targets`, the next input is the drawn token with
        probability `sample_probability` per example and step, else the true token (scheduled
        sampling; probability None or 0 = teacher forcing).

        Args:
            z: `[batch, z_size]` latent codes.
            targets: optional int `[batch, seq_len]`.
            sample_probability: scalar, see above.
            temperature: scalar or `[batch]`.
            seed: int `[2]`, the seed of the stateless random ops.

        Returns:
            `(logits, tokens)`: `[batch, seq_len, vocab]` float and `[batch, seq_len]` int32, the
            tokens fed as the next inputs (the drawn ones when free running).
        """
        z = tf.convert_to_tensor(z, tf.float32)
        batch = tf.shape(z)[0]
        seg_len = self.seq_len // self._n_segments
        cond = self.conditioning(z)                                      # [B, S, D]
        init_flat = self.initial_state(cond)                             # [B, S, state]
        params = self.lstm.step_params(first_input_projected=True)
        # The bottom layer's input is [embedding of the previous token, cond_j]: its projection
        # is a row of `token_proj` plus `cond_proj[:, j]`, both computed once before the loop.
        kernel, dtype = tf.convert_to_tensor(self.lstm.cells[0].kernel), self.lstm.matmul_dtype
        cond_proj = dot(cond, kernel[self.embed_size:], dtype)           # [B, S, 4H]
        token_proj = matmul(self.embedding.embeddings, kernel[:self.embed_size],
                            dtype)                                       # [vocab, 4H]
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), [batch])
        greedy = temperature <= 0.0
        scale = tf.where(greedy, 1.0, temperature)[:, None]
        seed = tf.cast(seed, tf.int32)  # XLA's stateless multinomial takes int32 seeds
        use_targets = targets is not None
        if use_targets:
            targets = tf.cast(targets, tf.int32)
            sample_probability = tf.cast(
                0.0 if sample_probability is None else sample_probability, tf.float32)

        def body(t, prev_proj, states, logits_ta, tokens_ta):
            segment = t // seg_len
            if self._n_segments > 1:
                fresh = self.lstm.state_from_flat(tf.gather(init_flat, segment, axis=1))
                starts = tf.equal(t % seg_len, 0)
                states = [(tf.where(starts, h0, h), tf.where(starts, c0, c))
                          for (h0, c0), (h, c) in zip(fresh, states)]
            proj = prev_proj + tf.gather(cond_proj, segment, axis=1)
            out, states = self.lstm.step_with_params(params, None, states,
                                                     first_input_projection=proj)
            logits = self.output_dense(out)
            step_seed = tf.random.experimental.stateless_fold_in(seed, t)
            seeds = tf.random.experimental.stateless_split(step_seed, 2)
            drawn = tf.cast(tf.random.stateless_categorical(
                logits / scale, 1, seed=seeds[0])[:, 0], tf.int32)
            drawn = tf.where(greedy, tf.argmax(logits, axis=-1, output_type=tf.int32), drawn)
            if use_targets:
                use_drawn = tf.random.stateless_uniform([batch], seed=seeds[1]) < \
                    sample_probability
                token = tf.where(use_drawn, drawn, targets[:, t])
            else:
                token = drawn
            return (t + 1, tf.gather(token_proj, token), states, logits_ta.write(t, logits),
                    tokens_ta.write(t, token))

        # With one segment the state starts from it; otherwise it is replaced at t = 0.
        init_states = (self.lstm.state_from_flat(init_flat[:, 0]) if self._n_segments == 1
                       else self.lstm.zero_state(batch))
        _, _, _, logits_ta, tokens_ta = tf.while_loop(
            lambda t, *_: t < self.seq_len, body,
            (tf.constant(0), tf.zeros([batch, 4 * self.hidden_size]), init_states,
             tf.TensorArray(tf.float32, size=self.seq_len),
             tf.TensorArray(tf.int32, size=self.seq_len)),
            maximum_iterations=self.seq_len)
        logits = tf.transpose(logits_ta.stack(), [1, 0, 2])
        tokens = tf.transpose(tokens_ta.stack(), [1, 0])
        return logits, tokens


class FlatDecoder(_AutoregressiveDecoder):
    """Flat autoregressive LSTM decoder p(x|z).

    The LSTM stack starts from dense + tanh of z; its input at step t is [embedding of the token
    at t-1 (a zero vector at t = 0), z]; a dense layer gives the 90 logits.

    Args:
        seq_len: int, steps per sequence.
        z_size: int, latent size.
        embed_size: int, token embedding size.
        hidden_size: int, LSTM units per layer.
        n_layers: int, stacked LSTM layers.
        vocab_size: int, number of token classes (90).
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).

    Call: `(x, z)` with `x` int `[batch, seq_len]`, `z` `[batch, z_size]` -> teacher-forced logits
    `[batch, seq_len, vocab_size]`. See `step_loop` for sampling.

    Reference: Roberts et al., ICML 2018, section 3.
    """

    def __init__(self, seq_len, z_size, embed_size, hidden_size, n_layers,
                 vocab_size=VOCAB_SIZE, precision="float32", **kwargs):
        super().__init__(seq_len, embed_size, hidden_size, n_layers, n_segments=1,
                         cond_size=z_size, vocab_size=vocab_size, precision=precision,
                         **kwargs)
        self.z_size = z_size

    def build(self, input_shape=None):
        self._build_core()

    def conditioning(self, z):
        return z[:, None, :]

    def get_config(self):
        config = super().get_config()
        config.update({"seq_len": self.seq_len, "z_size": self.z_size,
                       "embed_size": self.embed_size, "hidden_size": self.hidden_size,
                       "n_layers": self.n_layers, "vocab_size": self.vocab_size,
                       "precision": self.precision})
        return config


class Conductor(keras.layers.Layer):
    """The conductor: an LSTM stack run for `n_subsequences` steps from z.

    Its state starts from dense + tanh of z, its inputs are zeros; each output goes through a dense
    layer to the subsequence embedding `c_j`.

    Args:
        n_subsequences: int, conductor steps (= subsequences of the melody).
        z_size: int, latent size.
        hidden_size: int, LSTM units per layer.
        n_layers: int, stacked LSTM layers.
        c_size: int, size of each embedding `c_j`.
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).

    Call: `z` `[batch, z_size]` -> `[batch, n_subsequences, c_size]`.

    Reference: Roberts et al., ICML 2018, section 3.2.
    """

    def __init__(self, n_subsequences, z_size, hidden_size, n_layers, c_size,
                 precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.n_subsequences = n_subsequences
        self.z_size = z_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.c_size = c_size
        self.precision = precision
        # === Layers ===
        self.lstm = LSTMStack(hidden_size, n_layers, precision, name="lstm")
        self.initial_state = keras.layers.Dense(self.lstm.state_size, activation="tanh",
                                                name="initial_state")
        self.output_dense = keras.layers.Dense(c_size, name="c")

    def build(self, input_shape=None):
        self.lstm.build((None, 1))
        self.initial_state.build((None, self.z_size))
        self.output_dense.build((None, self.hidden_size))

    def call(self, z):
        batch = tf.shape(z)[0]
        init = self.lstm.state_from_flat(self.initial_state(z))
        out, _ = self.lstm.sequence(tf.zeros([batch, self.n_subsequences, 1]), init)
        return self.output_dense(out)

    def get_config(self):
        config = super().get_config()
        config.update({"n_subsequences": self.n_subsequences, "z_size": self.z_size,
                       "hidden_size": self.hidden_size, "n_layers": self.n_layers,
                       "c_size": self.c_size, "precision": self.precision})
        return config


class HierarchicalDecoder(_AutoregressiveDecoder):
    """Hierarchical decoder: a conductor over subsequences and a shared bottom LSTM decoder.

    The conductor turns z into `n_subsequences` embeddings `c_j`. Subsequence j of the melody is
    decoded by the shared bottom decoder started from dense + tanh of `c_j`, with `c_j`
    concatenated to each of its inputs; it stays autoregressive across subsequence boundaries
    (the last token of subsequence j-1 is the first input of subsequence j).

    Args:
        seq_len: int, steps per sequence; must be divisible by `n_subsequences` (ValueError).
        z_size: int, latent size.
        embed_size, hidden_size, n_layers: ints, the bottom decoder.
        n_subsequences: int, conductor steps.
        c_size: int, conductor embedding size.
        conductor_hidden_size, conductor_n_layers: ints, the conductor's LSTM stack.
        vocab_size: int, number of token classes (90).
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).

    Call: `(x, z)` -> teacher-forced logits `[batch, seq_len, vocab_size]`.

    Reference: Roberts et al., ICML 2018, section 3.2.
    """

    def __init__(self, seq_len, z_size, embed_size, hidden_size, n_layers, n_subsequences,
                 c_size, conductor_hidden_size, conductor_n_layers, vocab_size=VOCAB_SIZE,
                 precision="float32", **kwargs):
        super().__init__(seq_len, embed_size, hidden_size, n_layers,
                         n_segments=n_subsequences, cond_size=c_size, vocab_size=vocab_size,
                         precision=precision, **kwargs)
        self.z_size = z_size
        self.n_subsequences = n_subsequences
        self.c_size = c_size
        self.conductor_hidden_size = conductor_hidden_size
        self.conductor_n_layers = conductor_n_layers
        self.conductor = Conductor(n_subsequences, z_size, conductor_hidden_size,
                                   conductor_n_layers, c_size, precision, name="conductor")

    def build(self, input_shape=None):
        self.conductor.build((None, self.z_size))
        self._build_core()

    def conditioning(self, z):
        return self.conductor(z)

    def get_config(self):
        config = super().get_config()
        config.update({"seq_len": self.seq_len, "z_size": self.z_size,
                       "embed_size": self.embed_size, "hidden_size": self.hidden_size,
                       "n_layers": self.n_layers, "n_subsequences": self.n_subsequences,
                       "c_size": self.c_size,
                       "conductor_hidden_size": self.conductor_hidden_size,
                       "conductor_n_layers": self.conductor_n_layers,
                       "vocab_size": self.vocab_size, "precision": self.precision})
        return config
