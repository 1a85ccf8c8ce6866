"""The whole-sequence LSTM (`audiogen.rnn.lstm_sequence`): its steps and its recurrence equal the
reference cell (`audiogen.rnn.cells.lstm_cell`) in value and gradient, with the compiled cell ops
and with TensorFlow's operations."""
import numpy as np
import pytest
import tensorflow as tf
import keras

from audiogen.kernels import dispatch, lstm_cell
from audiogen.midi.encoding import NUM_CLASSES
from audiogen.musicvae import MusicVAE
from audiogen.precision import to_matmul_dtype
from audiogen.rnn import cells, lstm_sequence
from audiogen.rnn.lstm_sequence import run_lstm_sequences
from audiogen.losses import kl_divergence_diag_normal, sequence_cross_entropy


@pytest.fixture(params=["fused", "tf"])
def cell_steps(request, monkeypatch):
    """Run the whole-sequence LSTM with the compiled cell ops and with TensorFlow's operations
    (what XLA-compiled steps and machines without a compiler use)."""
    if request.param == "tf":
        monkeypatch.setenv(dispatch.KERNELS_ENV, "off")
    return request.param


def _weighted_sum(tensors):
    """A weighted sum of every element of `tensors`, so that no gradient is trivial."""
    loss = 0.0
    for k, t in enumerate(tensors):
        weights = tf.sin(tf.range(tf.size(t), dtype=tf.float32) + k)
        loss += tf.reduce_sum(tf.reshape(weights, tf.shape(t)) * t)
    return loss


def _step_inputs(rng, gate_axis, units=5, batch=3):
    z_shape = [4 * units, batch] if gate_axis == 0 else [batch, 4 * units]
    state = [units, batch] if gate_axis == 0 else [batch, units]
    x, r = (tf.constant(rng.normal(size=z_shape), tf.float32) for _ in "xr")
    return x, r, tf.constant(rng.normal(size=state), tf.float32)


# --- one step -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("gate_axis", [0, 1])
def test_tf_cell_forward_equals_the_reference_cell(gate_axis, dtype):
    x, r, c = _step_inputs(np.random.default_rng(gate_axis), gate_axis)
    r = tf.cast(r, dtype)
    h, h_low, c_new, _ = lstm_sequence.tf_cell_forward(x, r, c, gate_axis, dtype)
    ref_h, ref_c = cells.lstm_cell(x + tf.cast(r, tf.float32), c, gate_axis=gate_axis)
    np.testing.assert_allclose(h, ref_h, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c_new, ref_c, rtol=1e-6, atol=1e-7)
    assert h_low.dtype == dtype
    np.testing.assert_array_equal(tf.cast(h_low, tf.float32),
                                  tf.cast(to_matmul_dtype(h, dtype), tf.float32))


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("gate_axis", [0, 1])
def test_tf_cell_backward_equals_autodiff_of_the_reference_cell(gate_axis, dtype):
    rng = np.random.default_rng(10 + gate_axis)
    x, r, c = _step_inputs(rng, gate_axis)
    r = tf.cast(r, dtype)
    d_out, dc = (tf.constant(rng.normal(size=c.shape), tf.float32) for _ in "ab")
    dh_rec = tf.cast(tf.constant(rng.normal(size=c.shape), tf.float32), dtype)
    *_, saved = lstm_sequence.tf_cell_forward(x, r, c, gate_axis, dtype)
    dz, dz_low, dc_prev = lstm_sequence.tf_cell_backward(saved, d_out, dh_rec, dc, gate_axis,
                                                         dtype)
    preact = x + tf.cast(r, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([preact, c])
        h, c_new = cells.lstm_cell(preact, c, gate_axis=gate_axis)
        loss = (tf.reduce_sum((d_out + tf.cast(dh_rec, tf.float32)) * h)
                + tf.reduce_sum(dc * c_new))
    ref_dz, ref_dc = tape.gradient(loss, [preact, c])
    np.testing.assert_allclose(dz, ref_dz, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dc_prev, ref_dc, rtol=1e-5, atol=1e-6)
    assert dz_low.dtype == dtype
    np.testing.assert_array_equal(tf.cast(dz_low, tf.float32),
                                  tf.cast(to_matmul_dtype(dz, dtype), tf.float32))


# --- whole sequences ------------------------------------------------------------------------------

@pytest.mark.parametrize("feature_major", [True, False], ids=["feature_major", "batch_major"])
def test_recurrence_equals_a_loop_over_the_reference_cell(cell_steps, feature_major):
    """Both layouts, float32: values and hand-written gradients equal those of a plain Python
    loop over `cells.lstm_cell` (automatic differentiation)."""
    rng = np.random.default_rng(3)
    steps, batch, units = 6, 3, (5, 4)

    def normal(*shape):
        return tf.constant(rng.standard_normal(shape), tf.float32)

    projs = [normal(steps, batch, 4 * u) for u in units]
    kernels = [normal(u, 4 * u) for u in units]
    biases = [normal(4 * u) for u in units]
    h0s, c0s = [normal(batch, u) for u in units], [normal(batch, u) for u in units]
    args = projs + kernels + biases + h0s + c0s

    def reference(*args):
        outputs, final_h, final_c = [], [], []
        for k in range(2):
            h, c, seq = args[6 + k], args[8 + k], []
            for t in range(steps):
                h, c = cells.lstm_cell(args[k][t] + tf.matmul(h, args[2 + k]) + args[4 + k], c)
                seq.append(h)
            outputs.append(tf.stack(seq))
            final_h.append(h)
            final_c.append(c)
        return outputs + final_h + final_c

    results = []
    for run in (lstm_sequence.lstm_recurrence(2, feature_major), reference):
        with tf.GradientTape() as tape:
            tape.watch(args)
            values = list(run(*args))
            loss = _weighted_sum(values)
        results.append((values, tape.gradient(loss, args)))
    (values, grads), (ref_values, ref_grads) = results
    for a, b in zip(values, ref_values):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    for a, b in zip(grads, ref_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


def test_whole_sequence_lstm_matches_keras_cells_with_gradients(cell_steps):
    """The fast path's hand-written gradient equals autodiff through the keras LSTMCells."""
    fw, bw = keras.layers.LSTMCell(6), keras.layers.LSTMCell(5)
    fw.build((None, 4 + 3))
    bw.build((None, 4))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 7, 4)), tf.float32)
    const = tf.constant(rng.standard_normal((2, 3)), tf.float32)
    states = [tuple(tf.constant(rng.standard_normal((2, n)), tf.float32) for _ in "hc")
              for n in (6, 5)]
    weights = [fw.kernel, fw.recurrent_kernel, fw.bias, bw.kernel, bw.recurrent_kernel, bw.bias]

    def loss_of(outputs, finals):  # a weighted sum of every output, so no gradient is trivial
        loss = 0.0
        for k, out in enumerate(outputs + [h for h, _ in finals] + [c for _, c in finals]):
            weights = tf.sin(tf.range(tf.size(out), dtype=tf.float32) + k)
            loss += tf.reduce_sum(tf.reshape(weights, tf.shape(out)) * out)
        return loss

    def reference():
        outputs, finals = [], []
        for cell, inputs, (h, c), reverse in ((fw, tf.concat(
                [x, tf.broadcast_to(const[:, None], [2, 7, 3])], -1), states[0], False),
                (bw, x, states[1], True)):
            seq = []
            for t in (range(6, -1, -1) if reverse else range(7)):
                h, (h, c) = cell(inputs[:, t], [h, c])
                seq.append(h)
            outputs.append(tf.stack(seq[::-1] if reverse else seq, axis=1))
            finals.append((h, c))
        return outputs, finals

    tensors = [x, const] + [t for s in states for t in s]
    sources = weights + tensors
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        outputs, finals = run_lstm_sequences([fw, bw], [x, x], states, reverse=[False, True],
                                             constants=[const, None])
        fast = loss_of(outputs, finals)
    fast_grads = tape.gradient(fast, sources)
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        ref_outputs, ref_finals = reference()
        ref = loss_of(ref_outputs, ref_finals)
    ref_grads = tape.gradient(ref, sources)
    for a, b in zip(outputs, ref_outputs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    np.testing.assert_allclose(float(fast), float(ref), rtol=1e-5)
    for a, b in zip(fast_grads, ref_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


def test_mixed_bfloat16_lstm_products_stay_close_to_float32(cell_steps):
    """bfloat16 products: different numbers (the precision is in effect), close to float32 ones,
    with the hand-written gradient as well (feature-major and batch-major loops)."""
    rng = np.random.default_rng(1)
    for batch in (3, 260):  # float32: below and above _FEATURE_MAJOR_MAX_BATCH
        cells = [keras.layers.LSTMCell(16), keras.layers.LSTMCell(16)]
        for cell in cells:
            cell.build((None, 8))
        x = tf.constant(rng.standard_normal((batch, 12, 8)), tf.float32)
        states = [(tf.zeros([batch, 16]), tf.zeros([batch, 16]))] * 2
        variables = [v for cell in cells for v in cell.trainable_variables]
        results = []
        for dtype in (tf.float32, tf.bfloat16):
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs, _ = run_lstm_sequences(cells, [x, x], states, reverse=[False, True],
                                                dtype=dtype)
                loss = tf.reduce_sum(tf.sin(tf.range(12, dtype=tf.float32))[:, None]
                                     * (outputs[0] + 2.0 * outputs[1]))
            results.append([o.numpy() for o in outputs]
                           + [tf.convert_to_tensor(g).numpy()
                              for g in tape.gradient(loss, variables + [x])])
        for full, low in zip(*results):
            error = np.abs(full - low).max() / np.abs(full).max()
            assert 0 < error < 0.02, error


def test_musicvae_gradients_without_the_compiled_op_equal_those_with_it(monkeypatch):
    """`AUDIOGEN_KERNELS=off` (read while tracing) swaps the compiled cell ops for TensorFlow's
    operations in a train-step-like function, and nothing else changes."""
    if lstm_cell.load() is None:
        pytest.skip("the LstmCell op could not be built here (no C++ compiler?)")
    model = MusicVAE(seq_len=16, z_size=8, use_hier=True, n_subsequences=2, c_size=8,
                     encoder_params=dict(embed_size=8, hidden_size=16, n_layers=1),
                     decoder_params=dict(embed_size=8, hidden_size=16, n_layers=2),
                     conductor_params=dict(hidden_size=16, n_layers=1))
    x = tf.constant(np.random.RandomState(0).randint(0, NUM_CLASSES, size=(4, 16)), tf.int32)
    eps = tf.random.stateless_normal([4, 8], seed=(1, 2))

    def train_step_like(x):
        with tf.GradientTape() as tape:
            mu, sigma = model.encoder(x)
            logits = model.decoder.teacher_forced(x, mu + sigma * eps)
            loss = (tf.reduce_mean(sequence_cross_entropy(x, logits))
                    + tf.reduce_mean(kl_divergence_diag_normal(mu, sigma)))
        return loss, tape.gradient(loss, model.trainable_variables)

    def op_types(function):
        graph = function.get_concrete_function(x).graph.as_graph_def()
        return {node.op for f in graph.library.function for node in f.node_def}

    results = {}
    for setting in ("on", "off"):
        monkeypatch.setenv(dispatch.KERNELS_ENV, setting)
        function = tf.function(train_step_like)  # a new trace: the dispatch runs while tracing
        loss, grads = function(x)
        results[setting] = [loss] + [tf.convert_to_tensor(g) for g in grads]
        uses_op = {"LstmCellForward", "LstmCellBackward"} <= op_types(function)
        assert uses_op == (setting == "on")
    # The op's exp and tanh round differently from TensorFlow's in the last bits: the atol is
    # for the gradients that are nearly zero.
    for on, off in zip(results["on"], results["off"]):
        np.testing.assert_allclose(on.numpy(), off.numpy(), rtol=1e-5, atol=1e-7)
