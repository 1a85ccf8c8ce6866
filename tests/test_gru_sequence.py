"""The GRU recurrence with a hand-written gradient equals the plain per-step cell, values and
gradients (eager and under XLA; float32 exactly, bfloat16 products within their rounding)."""
import numpy as np
import pytest
import tensorflow as tf

from audiogen.rnn.cells import gru_cell
from audiogen.rnn.gru_sequence import gru_sequence


def plain_gru_sequence(gx, kernel, bias, h0):
    """The reference GRU cell over time, step by step, differentiated automatically
    (float32)."""
    h, outputs = h0, []
    for t in range(gx.shape[0]):
        h = gru_cell(gx[t], tf.matmul(h, kernel) + bias, h)
        outputs.append(h)
    return tf.stack(outputs)


@pytest.mark.parametrize("jit_compile,matmul_dtype", [
    (False, tf.float32), (True, tf.float32), (False, tf.bfloat16), (True, tf.bfloat16)])
def test_values_and_gradients_match_the_plain_recurrence(jit_compile, matmul_dtype):
    rng = np.random.default_rng(0)
    steps, batch, units = 7, 3, 5
    args = [tf.constant(rng.normal(size=shape), tf.float32) for shape in
            ([steps, batch, 3 * units], [units, 3 * units], [3 * units], [batch, units])]
    upstream = tf.constant(rng.normal(size=[steps, batch, units]), tf.float32)

    @tf.function(jit_compile=jit_compile)
    def value_and_grads(fn):
        with tf.GradientTape() as tape:
            tape.watch(args)
            out = fn(*args)
            # Weight the steps differently and use the last state on its own as well, as the
            # model does (outputs for the next layer, final state carried to the next window).
            loss = tf.reduce_sum(out * upstream) + tf.reduce_sum(tf.square(out[-1]))
        return out, tape.gradient(loss, args)

    out_fast, grads_fast = value_and_grads(lambda *a: gru_sequence(*a, matmul_dtype))
    out_plain, grads_plain = value_and_grads(plain_gru_sequence)
    exact = matmul_dtype == tf.float32
    np.testing.assert_allclose(out_fast, out_plain, rtol=1e-5 if exact else 0,
                               atol=1e-6 if exact else 2e-2)
    if not (exact or jit_compile):     # (XLA may keep float32 for small products: more precise)
        assert np.abs(out_fast - out_plain).max() > 0              # the products were rounded
    for name, g_fast, g_plain in zip(("gx", "kernel", "bias", "h0"), grads_fast, grads_plain):
        scale = 1.0 if exact else np.abs(g_plain).max()
        np.testing.assert_allclose(g_fast, g_plain, rtol=1e-4 if exact else 0,
                                   atol=1e-5 if exact else 3e-2 * scale, err_msg=name)
        assert g_fast.dtype == tf.float32
