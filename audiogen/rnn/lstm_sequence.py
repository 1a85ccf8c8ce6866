"""The whole-sequence LSTM: stacks of `keras.layers.LSTMCell`s run over whole sequences in one
`tf.while_loop`, with a hand-written gradient.

This module owns the recurrence (`lstm_recurrence`), its two memory layouts, the element-wise
step written with TensorFlow's operations (`tf_cell_forward` / `tf_cell_backward`, the maths of
`audiogen.rnn.cells.lstm_cell`) or with the compiled `LstmCell` ops (`fused_cell_steps`), and the
input projections computed for all steps at once (`project`, `run_lstm`, `run_lstm_sequences`).

Sequences are time-major `[time, batch, features]` inside the whole-sequence path, so that an
input projection is one plain matmul `[time * batch, features] @ kernel` (and its gradient two
plain matmuls). The loop itself runs in one of two layouts, chosen by batch size and product
dtype (`_feature_major_for`, from measurements on a 2-core AVX-512 CPU):

* feature-major for float32 products and small batches: projections `[time, 4 units, batch]`,
  state `[units, batch]`. The recurrent matmul of a step is then `R^T [4 units, units] @ h
  [units, batch]`, the large weight on the left, which oneDNN runs markedly faster than `h @ R`
  at small batches; the gates are contiguous row blocks and the backward step `R @ dz` needs no
  transposed R. This costs a transpose of the projections before the loop and of their
  gradient after it.
* batch-major otherwise: large batches (the hierarchical decoder's batch * n_subsequences rows),
  where the matmuls are efficient either way, and bfloat16 products, whose train steps with the
  fused cell ops ran faster without the transposes: no transposes at all.

Loop variables: the data-dependent ones (the input projections of the forward loop, the saved
activations of the backward loop) come first. While compiling, XLA's oneDNN matmul rewriter
tries to constant-fold the operands of every matmul, which evaluates a while loop's initial
values in order until one depends on the data; large zero-initialised TensorArrays placed first
would all be evaluated there, which makes the compilation of long sequences much slower.
"""
import collections

import tensorflow as tf

from audiogen.kernels import dispatch
from audiogen.precision import column_sums, matmul, to_matmul_dtype

_FEATURE_MAJOR_MAX_BATCH = 256
# What `tf_cell_forward` saves per step for `tf_cell_backward`: i, f, g, o, tanh(c') and c.
_TF_SAVED_COUNT = 6


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


# --- one step's element-wise part -----------------------------------------------------------------

def tf_cell_forward(x, r, c, gate_axis, dtype):
    """One LSTM step's element-wise part with TensorFlow's operations: `x` the input projection
    with the bias, `r` the recurrent product (in `dtype`), `c` the incoming cell state. Returns
    `h`, `h` in `dtype`, the new `c`, and what the backward step reads (`tf_cell_backward`).

    The same formulas as `audiogen.rnn.cells.lstm_cell` (tested), written out because the
    backward step reads the gates."""
    z = x + tf.cast(r, tf.float32)
    z_i, z_f, z_g, z_o = tf.split(z, 4, axis=gate_axis)
    i, f, o = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.sigmoid(z_o)
    g = tf.tanh(z_g)
    c_new = f * c + i * g
    tanh_c = tf.tanh(c_new)
    h = o * tanh_c
    return h, to_matmul_dtype(h, dtype), c_new, (i, f, g, o, tanh_c, c)


def tf_cell_backward(saved, d_out, dh_rec, dc, gate_axis, dtype):
    """The gradient of `tf_cell_forward`: `d_out` and `dh_rec` (in `dtype`) the gradients of
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


def fused_cell_steps(ops):
    """The same two functions as one compiled op each (`audiogen.kernels.lstm_cell`)."""
    def forward(x, r, c, gate_axis, dtype):
        h, h_low, c_new, saved = ops.lstm_cell_forward(x, r, c, gate_axis=gate_axis)
        return h, h_low, c_new, (saved,)

    def backward(saved, d_out, dh_rec, dc, gate_axis, dtype):
        return ops.lstm_cell_backward(saved[0], d_out, dh_rec, dc, gate_axis=gate_axis)

    return forward, backward


def cell_steps(*tensors, dtype=tf.float32):
    """`(forward, backward, saved_count)` for LSTM steps reading `tensors`, with recurrent
    products in `dtype`, in the graph being built: the compiled ops where
    `audiogen.kernels.dispatch` allows them, else TensorFlow's operations."""
    ops = dispatch.compiled_op("lstm_cell", *tensors, dtype=dtype)
    if ops is not None:
        return (*fused_cell_steps(ops), 1)
    return tf_cell_forward, tf_cell_backward, _TF_SAVED_COUNT


# --- the recurrence -------------------------------------------------------------------------------

class _RecurrentKernels:
    """The recurrent kernels of one call, cast once to the product dtype, with the recurrent
    product of a step and its gradient in the loop's layout."""

    def __init__(self, kernels, feature_major, dtype):
        self.feature_major = feature_major
        self.low = [to_matmul_dtype(k, dtype) for k in kernels]                # [H, 4H]
        self.transposed = [tf.transpose(k) for k in self.low] if feature_major else None

    def product(self, k, h):
        """`h @ R` of LSTM `k` (`R^T @ h` feature-major)."""
        if self.feature_major:
            return tf.matmul(self.transposed[k], h)
        return tf.matmul(h, self.low[k])

    def gradient(self, k, dz):
        """The gradient of `product` with respect to `h`."""
        if self.feature_major:
            return tf.matmul(self.low[k], dz)
        return tf.matmul(dz, self.low[k], transpose_b=True)


# What the backward pass of one call reads from its forward pass.
_Forward = collections.namedtuple(
    "_Forward", "steps kernels cell_backward h0s c0s init_h outputs saved_ta")


class LSTMRecurrence:
    """The recurrent part of `n` LSTMs in lockstep, with a hand-written gradient.

    Called (through `lstm_recurrence`) on `n` input projections `[time, batch, 4 units]` (without
    bias; already reversed in time for backward LSTMs), `n` recurrent kernels `[units, 4 units]`,
    `n` biases `[4 units]` and `n` initial `h`, `c` `[batch, units]`; returns the `n` stacked
    outputs `[time, batch, units]`, then the `n` final `h` and the `n` final `c`. The products run
    in `dtype` (the kernels are cast once per call). A step's element-wise part is one compiled
    op forward and one backward where they can run (`cell_steps`).

    The backward pass walks time once with one matmul per step (`dh_{t-1} = dz_t R^T`); the
    gradients of the recurrent kernel, `sum_t h_{t-1}^T dz_t`, and of the bias are then computed
    for all steps at once after the loop (one large matmul each) instead of being accumulated
    inside it (what automatic differentiation of the loop would do).

    Args:
        n: int, number of LSTMs run in lockstep.
        feature_major: bool, the layout of the loop (see the module's notes); the results do not
            depend on it.
        dtype: dtype of the recurrent products (float32 or bfloat16).

    Reference: Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997.
    """

    def __init__(self, n, feature_major, dtype=tf.float32):
        self.n = n
        self.feature_major = feature_major
        self.dtype = dtype
        self.gate_axis = 0 if feature_major else 1

    def to_loop(self, x):
        """`[time, batch, features]` <-> the loop's layout (its own inverse)."""
        return _swap_last(x) if self.feature_major else x

    def state_to_loop(self, state):
        """`[batch, units]` <-> the loop's layout (its own inverse)."""
        return tf.transpose(state) if self.feature_major else state

    def forward(self, *args):
        """The results (see the class) and what `backward` reads."""
        n = self.n
        projs, kernels, biases = args[:n], args[n:2 * n], args[2 * n:3 * n]
        h0s, c0s = args[3 * n:4 * n], args[4 * n:]
        cell_forward, cell_backward, saved_count = cell_steps(*projs, dtype=self.dtype)
        steps = _static_or_dynamic(projs[0], 0)
        recurrent = _RecurrentKernels(kernels, self.feature_major, self.dtype)
        if self.feature_major:
            biases = [b[:, None] for b in biases]
        # Inputs and output gradients are read a step at a time by slicing (a leading-axis slice
        # shares the tensor's buffer): a TensorArray's unstack would copy them first.
        xs = [self.to_loop(p) + b for p, b in zip(projs, biases)]
        init_h = [to_matmul_dtype(self.state_to_loop(h), self.dtype) for h in h0s]
        init_c = [self.state_to_loop(c) for c in c0s]
        c_last, h_ta, saved_ta = self._forward_loop(
            steps, recurrent, cell_forward, saved_count, xs, init_h, init_c)
        outputs = [self.to_loop(ta.stack()) for ta in h_ta]          # [T, N, H]
        results = (tuple(outputs) + tuple(out[-1] for out in outputs)
                   + tuple(self.state_to_loop(c) for c in c_last))
        return results, _Forward(steps, recurrent, cell_backward, h0s, c0s, init_h, outputs,
                                 saved_ta)

    def _forward_loop(self, steps, recurrent, cell_forward, saved_count, xs, init_h, init_c):
        """The forward `tf.while_loop`: the final `c`s (loop layout), the TensorArrays of the
        outputs `h` and of what the backward steps read."""
        n, gate_axis, dtype = self.n, self.gate_axis, self.dtype

        def body(t, xs, hs, cs, h_ta, saved_ta):
            out = ([], [], [], [])
            for k in range(n):
                h, h_low, c, saved = cell_forward(xs[k][t], recurrent.product(k, hs[k]), cs[k],
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
        # The inputs come first among the loop variables (see the module's notes).
        _, _, _, c_last, h_ta, saved_ta = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), xs, init_h, init_c, h_arrays, saved_arrays),
            maximum_iterations=steps)
        return c_last, h_ta, saved_ta

    def backward(self, fwd, *upstream):
        """The gradients of every argument of `forward` from those of its results."""
        n = self.n
        d_outs = [self.to_loop(d) for d in _zeros_for_none(upstream[:n], fwd.outputs)]
        # The final h's gradient joins the last step's output gradient.
        d_outs = [tf.concat([d[:-1], d[-1:] + self.state_to_loop(dh)[None]], axis=0)
                  for d, dh in zip(d_outs, _zeros_for_none(upstream[n:2 * n], fwd.h0s))]
        d_c_last = [self.state_to_loop(d) for d in _zeros_for_none(upstream[2 * n:], fwd.c0s)]
        dh0, dc0, dz_ta = self._backward_loop(fwd, d_outs, d_c_last)
        d_projs, d_kernels, d_biases = [], [], []
        for k in range(n):
            dz = self.to_loop(dz_ta[k].stack())                                  # [T, N, 4H]
            h_prev = tf.concat([fwd.h0s[k][None], fwd.outputs[k][:-1]], axis=0)  # [T, N, H]
            d_kernels.append(matmul(_flat(h_prev), _flat(dz), self.dtype, transpose_a=True))
            d_biases.append(column_sums(dz))
            d_projs.append(dz)
        return (tuple(d_projs) + tuple(d_kernels) + tuple(d_biases)
                + tuple(self.state_to_loop(tf.cast(d, tf.float32)) for d in dh0)
                + tuple(self.state_to_loop(d) for d in dc0))

    def _backward_loop(self, fwd, d_outs, d_c_last):
        """The backward `tf.while_loop`, walking time from the end: the gradients of the initial
        `h` (in the product dtype) and `c` (loop layout), and the TensorArrays of the gradients
        of `z` per step."""
        n, gate_axis, dtype, steps = self.n, self.gate_axis, self.dtype, fwd.steps

        def back(j, saved_ta, d_out, dhs, dcs, dz_ta):
            t = steps - 1 - j
            new_dh, new_dc, new_dz = [], [], []
            for k in range(n):
                dz, dz_low, dc = fwd.cell_backward([ta.read(t) for ta in saved_ta[k]],
                                                   d_out[k][t], dhs[k], dcs[k],
                                                   gate_axis, dtype)
                new_dh.append(fwd.kernels.gradient(k, dz_low))
                new_dc.append(dc)
                new_dz.append(dz_ta[k].write(t, dz))
            return j + 1, saved_ta, d_out, new_dh, new_dc, new_dz

        dh_init = [tf.zeros_like(h) for h in fwd.init_h]
        dz_arrays = [tf.TensorArray(tf.float32, size=steps) for _ in range(n)]
        # Saved activations first, the (possibly all-zero) output gradients after them.
        _, _, _, dh0, dc0, dz_ta = tf.while_loop(
            lambda j, *_: j < steps, back,
            (tf.constant(0), fwd.saved_ta, d_outs, dh_init, d_c_last, dz_arrays),
            maximum_iterations=steps)
        return dh0, dc0, dz_ta


def lstm_recurrence(n, feature_major, dtype=tf.float32):
    """`LSTMRecurrence(n, feature_major, dtype)` as a function with its hand-written gradient:
    `f(*projections, *recurrent_kernels, *biases, *h0s, *c0s)` -> `(*outputs, *final_hs,
    *final_cs)` (see `LSTMRecurrence`)."""
    recurrence = LSTMRecurrence(n, feature_major, dtype)

    @tf.custom_gradient
    def run(*args):
        results, fwd = recurrence.forward(*args)
        return results, lambda *upstream: recurrence.backward(fwd, *upstream)

    return run


# --- cells over whole sequences -------------------------------------------------------------------

def project(cell, x, constant=None, dtype=tf.float32):
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


def bias(cell):
    """The bias `[4 units]` of a built LSTMCell as a tensor (zeros without one)."""
    if cell.use_bias:
        return tf.convert_to_tensor(cell.bias)
    return tf.zeros([4 * cell.units])


def run_lstm(cells, projections, states, dtype=tf.float32):
    """Run built LSTMCells over whole time-major sequences in one `tf.while_loop` (lockstep).

    Args:
        cells: `n` built `keras.layers.LSTMCell`s with the default activations.
        projections: `n` input projections `[time, batch, 4 units_k]` from `project`, each in
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
    results = lstm_recurrence(n, feature_major, dtype)(
        *projections, *[tf.convert_to_tensor(cell.recurrent_kernel) for cell in cells],
        *[bias(cell) for cell in cells], *[s[0] for s in states], *[s[1] for s in states])
    return list(results[:n]), list(zip(results[n:2 * n], results[2 * n:]))


def run_lstm_sequences(cells, inputs, states, reverse=None, constants=None,
                       dtype=tf.float32):
    """Run built LSTMCells over whole sequences in one `tf.while_loop` (in lockstep).

    Each cell k gets its own input `inputs[k]` (`[batch, time, features_k]`, all the same time
    length) and initial state `states[k] = (h, c)`; cells with `reverse[k]` walk time backwards
    (their outputs are returned in the original time order). Input projections are computed for
    all steps at once before the loop, and the loop has a hand-written gradient (see
    `LSTMRecurrence`). `constants[k]` (optional, `[batch, const_features_k]`) is an input
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
        projections.append(project(cell, tf.reverse(x, [0]) if backwards else x, const, dtype))
    outputs, finals = run_lstm(cells, projections, states, dtype)
    outputs = [tf.transpose(tf.reverse(out, [0]) if backwards else out, [1, 0, 2])
               for out, backwards in zip(outputs, reverse)]
    return outputs, finals
