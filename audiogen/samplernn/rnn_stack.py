"""`RNNStack`: GRU or LSTM layers with explicit, learned initial state (SampleRNN's frame tiers).

The stack offers a sequence path (`call`, for training and for priming the sampler) and the
per-step pieces the compiled sampler reuses (`step`, `cell`, `input_preactivations`), so both
share one set of weights; the cells' maths are `audiogen.rnn.cells`.
"""
import keras
import tensorflow as tf

from audiogen.precision import dot, matmul_dtype
from audiogen.rnn.cells import gru_cell, lstm_cell
from audiogen.rnn.gru_sequence import gru_sequence

RNN_TYPES = ("gru", "lstm")


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
        recurrent = product(h, self._w("recurrent_kernel", i), self.matmul_dtype)
        if self.rnn_type == "gru":
            h = gru_cell(gx, recurrent + self._w("recurrent_bias", i), h)
            return h, [h]
        h, c = lstm_cell(gx + recurrent, state[1])
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
