"""`LSTMStack`: MusicVAE's stack of LSTMCells with an explicit state, run over whole sequences
(`audiogen.rnn.lstm_sequence`) or a step at a time (`audiogen.rnn.cells.lstm_cell`)."""
import keras
import tensorflow as tf

from audiogen.precision import matmul, matmul_dtype, to_matmul_dtype
from audiogen.rnn import cells as rnn_cells
from audiogen.rnn.lstm_sequence import bias, project, run_lstm


class LSTMStack(keras.layers.Layer):
    """A stack of `n_layers` LSTMCells of `units`, with an explicit state.

    The state is a list of `(h, c)` pairs, one per layer, each `[batch, units]`.

    Args:
        units: int, cells per layer.
        n_layers: int, number of stacked layers.
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).

    Reference: Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997.
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
            (x,), (state,) = run_lstm([cell], [project(cell, x, constant, dtype)], [state], dtype)
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
            params.append((stacked, to_matmul_dtype(recurrent, self.matmul_dtype), bias(cell)))
        return params

    @staticmethod
    def step_with_params(params, x, states, first_input_projection=None):
        """One time step with the LSTMCell maths (the cells' default activations,
        `audiogen.rnn.cells.lstm_cell`): `x` `[batch, features]` -> (`[batch, units]`, new
        states). `first_input_projection` (`[batch, 4 units]`), if given, replaces
        `x @ kernel` of the bottom layer (e.g. a projection computed before the loop; see
        `step_params`). The products run in the kernels' dtype."""
        new_states = []
        for layer, ((stacked, recurrent, b), (h, c)) in enumerate(zip(params, states)):
            if layer == 0 and first_input_projection is not None:
                z = first_input_projection + matmul(h, recurrent, recurrent.dtype)
            else:
                z = matmul(tf.concat([x, h], axis=-1), stacked, stacked.dtype)
            h, c = rnn_cells.lstm_cell(z + b, c)
            x = h
            new_states.append((h, c))
        return x, new_states

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "n_layers": self.n_layers,
                       "precision": self.precision})
        return config
