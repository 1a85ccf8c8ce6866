"""The reference GRU and LSTM cells: the one statement of each cell's maths.

Every fast path (the hand-written gradients of `audiogen.rnn.gru_sequence` and
`audiogen.rnn.lstm_sequence`, the compiled `LstmCell` ops, the samplers' steps) computes these
formulas and is tested against them. Both take pre-activations, so callers choose how the matrix
products are computed (precision, packing, folding) and the cells own only the element-wise part.

GRU: the "reset after" form of Keras and cuDNN (Cho et al. 2014, https://arxiv.org/abs/1406.1078):
with input pre-activations `x = [x_z, x_r, x_n]` and recurrent ones `g = h @ R + b = [g_z, g_r,
g_n]`,

    z = sigmoid(x_z + g_z),  r = sigmoid(x_r + g_r),  n = tanh(x_n + r * g_n),
    h' = z * h + (1 - z) * n.

LSTM (Hochreiter & Schmidhuber 1997; gate order i, f, g, o as in Keras): with the summed
pre-activations `a = x @ W + h @ R + b = [a_i, a_f, a_g, a_o]`,

    c' = sigmoid(a_f) * c + sigmoid(a_i) * tanh(a_g),  h' = sigmoid(a_o) * tanh(c').
"""
import tensorflow as tf


def gru_cell(x_preact, h_preact, h, gate_axis=-1):
    """One GRU step: `x_preact`, `h_preact` `[..., 3 units]` (gates z, r, n on `gate_axis`),
    `h` the previous state -> the new state."""
    x_z, x_r, x_n = tf.split(x_preact, 3, axis=gate_axis)
    g_z, g_r, g_n = tf.split(h_preact, 3, axis=gate_axis)
    z = tf.sigmoid(x_z + g_z)
    r = tf.sigmoid(x_r + g_r)
    n = tf.tanh(x_n + r * g_n)
    return z * h + (1.0 - z) * n


def lstm_cell(preact, c, gate_axis=-1):
    """One LSTM step: `preact` `[..., 4 units]` (gates i, f, g, o on `gate_axis`), `c` the
    previous cell state -> `(h, c)` new."""
    a_i, a_f, a_g, a_o = tf.split(preact, 4, axis=gate_axis)
    c = tf.sigmoid(a_f) * c + tf.sigmoid(a_i) * tf.tanh(a_g)
    return tf.sigmoid(a_o) * tf.tanh(c), c
