"""SampleRNN model: shapes, config, weights, training with truncated BPTT and carried state."""
import numpy as np
import pytest
import tensorflow as tf
import keras

from audiogen.samplernn import SampleRNN

TINY = dict(frame_sizes=[4, 16], dim=16, rnn_type="gru", num_rnn_layers=2, q_type="linear",
            q_levels=16, emb_size=8, skip_conn=False, seq_len=32, max_grad_norm=1.0)


def tiny(**overrides):
    return SampleRNN(**{**TINY, **overrides})


def windows(model, batch, rng=0):
    top = model.frame_sizes[-1]
    return np.random.default_rng(rng).integers(
        0, model.q_levels, [batch, model.seq_len + top]).astype(np.int32)


def random_pieces(model, batch, num_windows, rng=0):
    top = model.frame_sizes[-1]
    return np.random.default_rng(rng).integers(
        0, model.q_levels, [batch, top + num_windows * model.seq_len]).astype(np.int32)


def window_dataset(pieces, seq_len, top, reset_every_window=False):
    """(x, reset) windows over `pieces` [batch, top + n * seq_len] as the data contract says."""
    n = (pieces.shape[1] - top) // seq_len
    xs = np.stack([pieces[:, i * seq_len:i * seq_len + seq_len + top] for i in range(n)])
    resets = np.array([reset_every_window or i == 0 for i in range(n)])
    return xs, resets


def manual_losses(model, xs, resets):
    """Per-window mean cross-entropy, carrying state by hand."""
    states, losses = None, []
    for x, reset in zip(xs, resets):
        if reset:
            states = model.initial_states(x.shape[0])
        logits, states = model(x, states)
        losses.append(float(tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(x[:, model.frame_sizes[-1]:], logits))))
    return losses, states


# --- structure ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rnn_type,frame_sizes", [("gru", [4, 16]), ("lstm", [4, 16]),
                                                   ("gru", [4, 8, 16]), ("gru", [16])])
def test_output_shapes_and_states(rnn_type, frame_sizes):
    model = tiny(rnn_type=rnn_type, frame_sizes=frame_sizes)
    x = windows(model, 3)
    logits, states = model(x)
    assert logits.shape == (3, 32, 16)
    per_layer = 1 if rnn_type == "gru" else 2
    assert len(states) == len(frame_sizes) * 2 * per_layer
    assert all(s.shape == (3, 16) for s in states)
    # Any length that is a multiple of the top frame works (used by the sampler's priming).
    longer = np.concatenate([x, x[:, -32:]], axis=1)
    assert model(longer)[0].shape == (3, 64, 16)


def test_causality_logits_do_not_see_their_target():
    model = tiny(frame_sizes=[4, 8, 16])
    x = windows(model, 2)
    base = model(x)[0].numpy()
    t = 21                                     # change target t: logits up to t must not move
    y = x.copy()
    y[:, 16 + t] = (y[:, 16 + t] + 5) % 16
    moved = model(y)[0].numpy()
    np.testing.assert_allclose(moved[:, :t + 1], base[:, :t + 1], atol=1e-6)
    assert np.abs(moved[:, t + 1:] - base[:, t + 1:]).max() > 1e-4


def test_get_config_round_trip():
    model = tiny(rnn_type="lstm", skip_conn=True, max_grad_norm=None, frame_sizes=[4, 8, 16],
                 precision="mixed_bfloat16")
    config = model.get_config()
    for key, value in TINY.items():
        if key not in ("rnn_type", "skip_conn", "max_grad_norm", "frame_sizes"):
            assert config[key] == value
    clone = SampleRNN.from_config(config)
    assert clone.get_config() == config
    assert clone.max_grad_norm is None and clone.skip_conn and clone.frame_sizes == [4, 8, 16]
    assert clone.precision == "mixed_bfloat16" and clone.mlp.precision == "mixed_bfloat16"
    model.build(), clone.build()
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_mixed_bfloat16_is_the_float32_model_to_bfloat16_precision(rnn_type):
    """Same weights, bfloat16 products: float32 logits and states, close to the float32 model's,
    and the gradients of a training step point the same way."""
    keras.utils.set_random_seed(0)
    exact = tiny(rnn_type=rnn_type, skip_conn=True).build_for_batch(2)
    mixed = tiny(rnn_type=rnn_type, skip_conn=True, precision="mixed_bfloat16").build_for_batch(2)
    mixed.set_weights(exact.get_weights())
    x = windows(exact, 2)

    def loss_and_grads(model):
        with tf.GradientTape() as tape:
            logits, states = model(x)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                x[:, model.frame_sizes[-1]:], logits))
        return logits, states, tape.gradient(loss, model.trainable_variables)

    logits_e, states_e, grads_e = loss_and_grads(exact)
    logits_m, states_m, grads_m = loss_and_grads(mixed)
    assert logits_m.dtype == tf.float32 and all(s.dtype == tf.float32 for s in states_m)
    # bfloat16 keeps 8 bits of mantissa: products are off by up to ~2^-8 relative.
    assert 0 < np.abs(logits_m - logits_e).max() < 0.03 * np.abs(logits_e).max()
    for g_e, g_m in zip(grads_e, grads_m):
        g_e, g_m = np.ravel(g_e), np.ravel(g_m)
        assert g_m.dtype == np.float32
        if np.abs(g_e).max() > 1e-6:
            cosine = g_e @ g_m / np.linalg.norm(g_e) / np.linalg.norm(g_m)
            assert cosine > 0.95  # per tensor: the small ones stray most


def test_mu_law_forces_256_levels():
    assert tiny(q_type="mu-law", q_levels=16).q_levels == 256


def test_skip_conn_changes_variables_and_output():
    plain, skip = tiny(), tiny(skip_conn=True)
    plain.build(), skip.build()
    names = lambda m: {w.path.split("/", 1)[1] for w in m.weights}
    extra = names(skip) - names(plain)
    # One skip kernel per tier for every layer after the first.
    assert len(extra) == 2 and all("skip_kernel" in n for n in extra)
    assert names(plain) <= names(skip)
    by_name = {v.path.split("/", 1)[1]: v for v in skip.weights}
    for w in plain.weights:                    # same shared weights, so only the wiring differs
        by_name[w.path.split("/", 1)[1]].assign(w)
    x = windows(plain, 2)
    assert np.abs(plain(x)[0].numpy() - skip(x)[0].numpy()).max() > 1e-3


def test_build_for_batch_creates_all_variables_without_data():
    model = tiny().build_for_batch(5)
    assert model.built and len(model.trainable_variables) == len(model.weights) > 0
    # The carried state is not among the weights (checkpoints don't depend on the batch size).
    assert not any("carried" in w.path for w in model.weights)


# --- weights ------------------------------------------------------------------------------------

def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(scale=0.3, size=v.shape).astype(np.float32))


def test_save_and_load_weights_restore_outputs_exactly(tmp_path):
    model = tiny(rnn_type="lstm", skip_conn=True).build_for_batch(4)
    randomize(model)
    x = windows(model, 2, rng=2)
    expected = model(x)[0].numpy()
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)

    fresh = SampleRNN.from_config(model.get_config()).build_for_batch(7)
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh(x)[0].numpy(), expected)


def test_tf_checkpoint_restores_into_model_built_for_another_batch(tmp_path):
    model = tiny(frame_sizes=[4, 8, 16]).build_for_batch(4)
    randomize(model)
    model.compile(optimizer="adam")
    model.optimizer.build(model.trainable_variables)
    model_only = tf.train.Checkpoint(model=model).save(str(tmp_path / "m"))
    saved = [name for name, _ in tf.train.list_variables(model_only)
             if name.startswith("model/") and "optimizer" not in name]
    assert len(saved) == len(model.weights)          # every weight, and no carried state
    path = tf.train.Checkpoint(model=model, optimizer=model.optimizer).save(str(tmp_path / "c"))
    assert not any("carried" in name for name, _ in tf.train.list_variables(path))

    fresh = SampleRNN.from_config(model.get_config()).build_for_batch(3)
    fresh.compile(optimizer="adam")
    fresh.optimizer.build(fresh.trainable_variables)
    tf.train.Checkpoint(model=fresh, optimizer=fresh.optimizer).restore(path).assert_consumed()
    x = windows(model, 2, rng=2)
    np.testing.assert_array_equal(fresh(x)[0].numpy(), model(x)[0].numpy())


# --- training -----------------------------------------------------------------------------------

def sine_pieces(batch, windows_per_piece, seq_len, top, q_levels, rng=0):
    r = np.random.default_rng(rng)
    t = np.arange(top + windows_per_piece * seq_len)
    period = r.choice([8, 12, 16], size=[batch, 1])
    wave = np.sin(2 * np.pi * t[None] / period + r.uniform(0, 2 * np.pi, [batch, 1]))
    return np.clip(np.round((wave + 1) / 2 * (q_levels - 1)), 0, q_levels - 1).astype(np.int32)


def test_fit_lowers_loss_and_logs_metrics():
    keras.utils.set_random_seed(0)
    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    pieces = sine_pieces(8, 3, 32, 16, 16)
    xs, resets = window_dataset(pieces, 32, 16)
    data = tf.data.Dataset.from_tensor_slices((xs, resets))
    history = model.fit(data, validation_data=data, epochs=25, verbose=0).history
    assert set(history) >= {"loss", "bits_per_sample", "accuracy", "val_loss",
                            "val_bits_per_sample", "val_accuracy"}
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    np.testing.assert_allclose(history["bits_per_sample"][-1], history["loss"][-1] / np.log(2),
                               rtol=1e-5)
    assert history["val_accuracy"][-1] > history["val_accuracy"][0]


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_fit_with_xla_and_steps_per_execution_lstm_skip(precision):
    keras.utils.set_random_seed(1)
    model = tiny(rnn_type="lstm", skip_conn=True, precision=precision)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True, steps_per_execution=3)
    xs, resets = window_dataset(sine_pieces(8, 4, 32, 16, 16), 32, 16)
    data = tf.data.Dataset.from_tensor_slices((xs, resets))
    history = model.fit(data, validation_data=data, epochs=12, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert np.isfinite(history["val_loss"]).all()


@pytest.mark.parametrize("jit_compile,steps_per_execution", [(False, 1), (True, 3)])
def test_evaluate_carries_state_exactly_like_a_manual_loop(jit_compile, steps_per_execution):
    """Validation windows: reset -> learned initial state; otherwise the carried state."""
    model = tiny(frame_sizes=[4, 8, 16]).build_for_batch(4)
    for v in model.trainable_variables:       # make the learned initial states matter
        if "initial" in v.path:
            v.assign(np.random.default_rng(3).normal(size=v.shape).astype(np.float32))
    model.compile(optimizer="adam", jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    # Two batches of pieces, 3 windows each: resets at windows 0 and 3.
    a = window_dataset(random_pieces(model, 4, 3, rng=4), 32, 16)
    b = window_dataset(random_pieces(model, 4, 3, rng=5), 32, 16)
    xs, resets = np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
    expected, _ = manual_losses(model, xs, resets)
    logs = model.evaluate(tf.data.Dataset.from_tensor_slices((xs, resets)), verbose=0,
                          return_dict=True)
    np.testing.assert_allclose(logs["loss"], np.mean(expected), rtol=1e-5)
    # Resetting every window gives a different (here: the manual-reset) answer.
    reset_all, _ = manual_losses(model, xs, np.ones_like(resets))
    assert abs(np.mean(reset_all) - np.mean(expected)) > 1e-4


def test_train_step_carries_stop_gradient_state_and_resets_to_learned_initial():
    """With a zero learning rate, fit's carried state equals a manual TBPTT loop's."""
    model = tiny(rnn_type="lstm").build_for_batch(4)
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=True, steps_per_execution=2)
    for v in model.trainable_variables:
        if "initial" in v.path:
            v.assign(np.full(v.shape, 0.5, np.float32))
    xs, resets = window_dataset(random_pieces(model, 4, 5, rng=6), 32, 16)
    xs, resets = np.concatenate([xs, xs[:2]]), np.concatenate([resets, [True, False]])
    model.fit(tf.data.Dataset.from_tensor_slices((xs, resets)), epochs=1, verbose=0)
    _, states = manual_losses(model, xs, resets)
    carried = model._untracked.carry["train"]
    for v, s in zip(carried, states):
        np.testing.assert_allclose(v.numpy()[:4], s.numpy(), atol=1e-5)


def test_gradients_reach_learned_initial_states_only_on_reset():
    model = tiny().build_for_batch(2)
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    initial = [v for v in model.trainable_variables if "initial" in v.path]
    x = windows(model, 2)
    before = [v.numpy().copy() for v in initial]
    model.train_on_batch(x, np.array(True))
    moved = [np.abs(v.numpy() - b).max() for v, b in zip(initial, before)]
    assert min(moved) > 0
    before = [v.numpy().copy() for v in initial]
    model.train_on_batch(x, np.array(False))
    np.testing.assert_array_equal([v.numpy() for v in initial], before)


def sign_memory_pieces(batch, windows_per_piece, seq_len, top, q_levels, rng=0):
    """Each piece has a sign c; every window's targets are `level(c)` then a silent tail.

    The silent tail is longer than any context the tiers or the MLP read from the window
    itself, so the first target of every window after the first is predictable only from the
    state carried over from earlier windows.
    """
    r = np.random.default_rng(rng)
    sign = r.integers(0, 2, [batch])
    silence, high, low = q_levels // 2, q_levels - 2, 1
    value = np.where(sign == 1, high, low)[:, None]
    window = np.full([batch, seq_len], silence)
    window[:, :seq_len - top] = value
    pieces = np.concatenate([np.full([batch, top], silence)] + [window] * windows_per_piece, 1)
    return pieces.astype(np.int32), sign


def first_target_accuracy(model, pieces, seq_len, top):
    xs, resets = window_dataset(pieces, seq_len, top)
    states, hits = None, []
    for i, (x, reset) in enumerate(zip(xs, resets)):
        if reset:
            states = model.initial_states(x.shape[0])
        logits, states = model(x, states)
        if i > 0:
            hits.append(np.argmax(logits[:, 0], -1) == x[:, top])
    return float(np.mean(hits))


def test_tbptt_state_carries_information_across_windows():
    seq_len, top = 16, 8

    def train(reset_every_window):
        keras.utils.set_random_seed(2)
        model = tiny(frame_sizes=[2, 8], seq_len=seq_len, dim=24, num_rnn_layers=1)
        model.compile(optimizer=keras.optimizers.Adam(2e-2), jit_compile=True)
        pieces, _ = sign_memory_pieces(32, 4, seq_len, top, 16, rng=0)
        xs, resets = window_dataset(pieces, seq_len, top, reset_every_window)
        model.fit(tf.data.Dataset.from_tensor_slices((xs, resets)), epochs=40, verbose=0)
        test_pieces, _ = sign_memory_pieces(64, 4, seq_len, top, 16, rng=1)
        return first_target_accuracy(model, test_pieces, seq_len, top)

    carried, reset = train(False), train(True)
    assert carried > 0.95, carried
    assert reset < 0.8, reset


@pytest.mark.parametrize("jit_compile", [False, True])
def test_frame_lookup_sum_gradient_equals_the_embedding_convolution(jit_compile):
    """The hand-written gradient of the MLP's input layer equals automatic differentiation of
    the plain formulation: embed the previous `frame_size` levels, one matmul per position."""
    from audiogen.samplernn.sample_mlp import frame_lookup_sum
    rng = np.random.default_rng(3)
    frame, q, emb, dim, batch, steps = 4, 16, 8, 12, 3, 10
    embedding = tf.constant(rng.normal(size=[q, emb]), tf.float32)
    kernel = tf.constant(rng.normal(size=[frame, emb, dim]), tf.float32)
    levels = tf.constant(rng.integers(0, q, [batch, steps + frame - 1]), tf.int32)
    upstream = tf.constant(rng.normal(size=[batch, steps, dim]), tf.float32)

    def fast(e, k):
        return frame_lookup_sum(tf.einsum("qe,fed->fqd", e, k), levels)

    def plain(e, k):
        embedded = tf.gather(e, levels)                                  # [B, T + f - 1, emb]
        return tf.add_n([tf.tensordot(embedded[:, j:j + steps], k[j], 1) for j in range(frame)])

    @tf.function(jit_compile=jit_compile)
    def value_and_grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([embedding, kernel])
            out = fn(embedding, kernel)
            loss = tf.reduce_sum(out * upstream)
        return out, [tf.convert_to_tensor(g) for g in tape.gradient(loss, [embedding, kernel])]

    out_fast, grads_fast = value_and_grads(fast)
    out_plain, grads_plain = value_and_grads(plain)
    np.testing.assert_allclose(out_fast, out_plain, rtol=1e-5, atol=1e-5)
    for g_fast, g_plain in zip(grads_fast, grads_plain):
        np.testing.assert_allclose(g_fast, g_plain, rtol=1e-4, atol=1e-4)
