"""The fused LSTM cell ops: equal to TensorFlow's operations, used only where they can run."""
import warnings

import numpy as np
import pytest
import tensorflow as tf

from audiogen.kernels import lstm_cell
from audiogen.rnn import lstm_sequence
from compiled_ops import require_op


@pytest.fixture(scope="module")
def op():
    return require_op("lstm_cell")


def _inputs(rng, gate_axis, dtype, units=5, batch=3):
    z_shape = [4 * units, batch] if gate_axis == 0 else [batch, 4 * units]
    state = [units, batch] if gate_axis == 0 else [batch, units]
    x = tf.constant(rng.normal(size=z_shape), tf.float32)
    r = tf.cast(tf.constant(rng.normal(size=z_shape), tf.float32), dtype)
    c = tf.constant(rng.normal(size=state), tf.float32)
    return x, r, c


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("gate_axis", [0, 1])
def test_forward_and_backward_equal_tensorflow_operations(op, gate_axis, dtype):
    rng = np.random.default_rng(gate_axis)
    x, r, c = _inputs(rng, gate_axis, dtype)
    forward, backward = lstm_sequence.fused_cell_steps(op)
    fused = forward(x, r, c, gate_axis, dtype)
    plain = lstm_sequence.tf_cell_forward(x, r, c, gate_axis, dtype)
    for a, b in zip(fused[:3], plain[:3]):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(tf.cast(a, tf.float32), tf.cast(b, tf.float32),
                                   rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused[3][0], tf.stack(plain[3]), rtol=1e-6, atol=1e-6)

    d_out, dc = (tf.constant(rng.normal(size=c.shape), tf.float32) for _ in "ab")
    dh_rec = tf.cast(tf.constant(rng.normal(size=c.shape), tf.float32), dtype)
    fused_grads = backward(fused[3], d_out, dh_rec, dc, gate_axis, dtype)
    plain_grads = lstm_sequence.tf_cell_backward(plain[3], d_out, dh_rec, dc, gate_axis, dtype)
    for a, b in zip(fused_grads, plain_grads):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(tf.cast(a, tf.float32), tf.cast(b, tf.float32),
                                   rtol=1e-5, atol=1e-6)


def test_bad_shapes_are_refused(op):
    x = tf.zeros([8, 3])
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="c must have shape"):
        op.lstm_cell_forward(x, x, tf.zeros([3, 3]), gate_axis=0)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="z must be"):
        op.lstm_cell_forward(tf.zeros([6, 3]), tf.zeros([6, 3]), tf.zeros([1, 3]), gate_axis=0)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="gate_axis must be"):
        op.lstm_cell_backward(tf.zeros([6, 2, 3]), tf.zeros([2, 3]), tf.zeros([2, 3]),
                              tf.zeros([2, 3]), gate_axis=5)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="saved must have"):
        op.lstm_cell_backward(tf.zeros([5, 2, 3]), tf.zeros([2, 3]), tf.zeros([2, 3]),
                              tf.zeros([2, 3]), gate_axis=0)


def test_ops_used_in_graphs_but_not_under_xla(op):
    chosen = {}

    def probe(x):
        chosen[tf.inside_function()] = lstm_sequence.cell_steps(x)[2]
        return x

    tf.function(probe, jit_compile=True)(tf.zeros([]))
    assert chosen == {True: 6}          # TensorFlow's operations: XLA cannot run custom ops
    chosen.clear()
    tf.function(probe)(tf.zeros([]))
    assert chosen == {True: 1}          # one fused op per step, one saved tensor


def test_a_failed_build_falls_back_to_tensorflow_operations(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGEN_KERNEL_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "false")
    lstm_cell.load.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert lstm_sequence.cell_steps()[0] is lstm_sequence.tf_cell_forward
        assert any("LstmCell op is unavailable" in str(w.message) for w in caught)
    finally:
        lstm_cell.load.cache_clear()
