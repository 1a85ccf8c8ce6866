"""The recurrent part of a GRU layer over a whole sequence, with a hand-written gradient.

The cell is `audiogen.rnn.cells.gru_cell` (Keras's "reset after" form), which the tests hold this
recurrence to, in value and gradient. The forward loop keeps the gates the backward loop needs.

Automatic differentiation of a `tf.scan` over the cell accumulates the gradient of `R` inside the
backward loop (one small matmul per step) and keeps per-step temporaries in TensorArrays, which
under XLA on CPU dominated the frame tiers' cost. Here the backward loop does only
`dh_{t-1} = ... + dg_t @ R^T` per step; the gradients of `R` and `b` are one large matmul and one
sum over all steps after the loop.

With a bfloat16 matmul dtype the recurrent kernel is cast once, before the loop; the products
`h @ R`, `dg @ R^T` and the kernel gradient run in bfloat16, everything else in float32.
"""
import tensorflow as tf

from audiogen.precision import to_matmul_dtype


def gru_sequence(gx, kernel, bias, h0, matmul_dtype=tf.float32):
    """Run the recurrence over time-major input pre-activations.

    Args:
        gx: `[time, batch, 3 units]` input pre-activations (`x @ W + b_x`), gates z, r, n; the
            time dimension must be static.
        kernel: `[units, 3 units]` recurrent kernel `R` (a tensor or a variable).
        bias: `[3 units]` recurrent bias `b` (a tensor or a variable).
        h0: `[batch, units]` initial state.
        matmul_dtype: dtype of the products with the recurrent kernel (float32 or bfloat16).
    Returns:
        `[time, batch, units]`: the state after every step (the last one is the final state).
    """
    # Variables are read here, so the gradient reaches them through the reads.
    return _gru_sequence(gx, to_matmul_dtype(kernel, matmul_dtype), tf.convert_to_tensor(bias),
                         h0)


def _times(x, kernel, transpose_b=False):
    """`x @ kernel` (or `kernel^T`) in the kernel's dtype, float32 result."""
    product = tf.matmul(to_matmul_dtype(x, kernel.dtype), kernel, transpose_b=transpose_b)
    return tf.cast(product, tf.float32)


@tf.custom_gradient
def _gru_sequence(gx, kernel, bias, h0):
    steps = gx.shape[0]
    xs = tf.TensorArray(gx.dtype, size=steps).unstack(gx)

    def body(t, xs, h, h_ta, a_ta):
        x_z, x_r, x_n = tf.split(xs.read(t), 3, axis=-1)
        g_z, g_r, g_n = tf.split(_times(h, kernel) + bias, 3, axis=-1)
        z = tf.sigmoid(x_z + g_z)
        r = tf.sigmoid(x_r + g_r)
        n = tf.tanh(x_n + r * g_n)
        h_new = z * h + (1.0 - z) * n
        saved = tf.concat([z, r, n, g_n], axis=-1)
        return t + 1, xs, h_new, h_ta.write(t, h_new), a_ta.write(t, saved)

    # The data-dependent inputs come first among the loop variables: XLA's compile-time constant
    # folding evaluates loop initial values in order until one depends on the data.
    _, _, _, h_ta, a_ta = tf.while_loop(
        lambda t, *_: t < steps, body,
        (tf.constant(0), xs, h0, tf.TensorArray(gx.dtype, size=steps),
         tf.TensorArray(gx.dtype, size=steps)),
        maximum_iterations=steps)
    hs = h_ta.stack()                                             # [T, B, U]
    saved = a_ta.stack()                                          # [T, B, 4U]

    def grad(d_hs):
        h_prev = tf.concat([h0[None], hs[:-1]], axis=0)           # [T, B, U]
        arrays = [tf.TensorArray(gx.dtype, size=steps).unstack(v) for v in (saved, h_prev, d_hs)]

        def back(j, arrays, dh, dx_ta, dg_ta):
            t = steps - 1 - j
            saved_t, h_prev_t, d_out_t = (a.read(t) for a in arrays)
            z, r, n, g_n = tf.split(saved_t, 4, axis=-1)
            dh = dh + d_out_t
            dz = dh * (h_prev_t - n) * z * (1.0 - z)
            dn = dh * (1.0 - z) * (1.0 - tf.square(n))
            dr = dn * g_n * r * (1.0 - r)
            dg = tf.concat([dz, dr, dn * r], axis=-1)
            dh_prev = dh * z + _times(dg, kernel, transpose_b=True)
            return (j + 1, arrays, dh_prev, dx_ta.write(t, tf.concat([dz, dr, dn], axis=-1)),
                    dg_ta.write(t, dg))

        _, _, dh0, dx_ta, dg_ta = tf.while_loop(
            lambda j, *_: j < steps, back,
            (tf.constant(0), arrays, tf.zeros_like(h0), tf.TensorArray(gx.dtype, size=steps),
             tf.TensorArray(gx.dtype, size=steps)),
            maximum_iterations=steps)
        dg = dg_ta.stack()                                        # [T, B, 3U]
        units3 = dg.shape[-1]
        dg_flat = tf.reshape(dg, [-1, units3])
        d_kernel = tf.matmul(to_matmul_dtype(tf.reshape(h_prev, [-1, h0.shape[-1]]), kernel.dtype),
                             to_matmul_dtype(dg_flat, kernel.dtype), transpose_a=True)
        d_bias = tf.reduce_sum(dg_flat, axis=0)
        return dx_ta.stack(), d_kernel, d_bias, dh0

    return hs, grad
