import numpy as np
import pytest
import tensorflow as tf
import keras

from audiogen.musicvae import MusicVAE
from audiogen.musicvae.decoders import Conductor, FlatDecoder, HierarchicalDecoder
from audiogen.musicvae.encoder import Encoder
from audiogen.musicvae.lstm_stack import LSTMStack
from audiogen.schedules import beta_schedule, sampling_probability

T, B, Z = 32, 4, 8
TINY = dict(seq_len=T, z_size=Z, encoder_params=dict(embed_size=8, hidden_size=16, n_layers=2),
            decoder_params=dict(embed_size=8, hidden_size=16, n_layers=2), n_subsequences=4,
            c_size=8, conductor_params=dict(hidden_size=16, n_layers=2))
TRAIN_KEYS = {"loss", "r_loss", "kl_bits", "beta", "sampling_prob", "accuracy"}


def melodies(n=B, seq_len=T, seed=0):
    return np.random.RandomState(seed).randint(0, 90, size=(n, seq_len)).astype("int32")


@pytest.fixture(scope="module", params=[False, True], ids=["flat", "hier"])
def model(request):
    return MusicVAE(use_hier=request.param, **TINY)


def test_get_config_round_trip(model):
    config = model.get_config()
    clone = MusicVAE.from_config(config)
    assert clone.get_config() == config
    assert config["use_hier"] == model.use_hier and config["seq_len"] == T
    assert config["decoder_params"] == {**TINY["decoder_params"], "input_dropout": 0.0}
    assert len(clone.trainable_variables) == len(model.trainable_variables)


def test_layer_configs_round_trip():
    layers = [LSTMStack(8, 2), Encoder(4, 8, 16, 1), Encoder(4, 8, 16, 2, n_subsequences=4),
              FlatDecoder(16, 4, 8, 16, 2),
              Conductor(4, 4, 16, 2, 8), HierarchicalDecoder(16, 4, 8, 16, 1, 4, 8, 16, 2)]
    for layer in layers:
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config


def test_defaults_are_the_seed_config():
    m = MusicVAE.from_run_config({"slice_bar": 1, "z_size": 8, "use_hier": False,
                                  "encoder_params": {"embed_size": 4, "hidden_size": 8,
                                                     "n_layers": 1},
                                  "decoder_params": {"embed_size": 4, "hidden_size": 8,
                                                     "n_layers": 1},
                                  "max_grad_norm": None})
    assert m.seq_len == 16 and m.max_grad_norm is None
    assert m.beta_settings == {"start_beta": 0.0, "end_beta": 0.2, "duration": 20000}
    with pytest.raises(ValueError, match="unknown key"):
        MusicVAE(seq_len=16, beta_settings={"beta": 1.0})


def test_variables_exist_without_data_and_restore(model, tmp_path):
    assert model.built and all(layer.built for layer in model._flatten_layers())
    assert len(model.trainable_variables) > 0
    n_variables = len(model.variables)
    model(tf.zeros([2, model.seq_len], tf.int32))
    assert len(model.variables) == n_variables
    x = melodies()
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = MusicVAE.from_config(model.get_config())
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    saved = [name for name, _ in tf.train.list_variables(path) if "VARIABLE_VALUE" in name]
    assert len(saved) == len(model.trainable_variables)  # every weight is in the checkpoint
    for a, b in zip(model.trainable_variables, fresh.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(fresh(x).numpy(), model(x).numpy(), atol=1e-6)


def test_shapes(model):
    x = melodies()
    mu, sigma = model.encode(x)
    assert mu.shape == (B, Z) and sigma.shape == (B, Z)
    assert np.all(sigma.numpy() > 0)
    assert model(x).shape == (B, T, 90)
    logits, tokens = model.decoder.step_loop(mu, temperature=1.0)
    assert logits.shape == (B, T, 90) and tokens.shape == (B, T) and tokens.dtype == tf.int32


def test_conductor_runs_n_subsequences_steps():
    model = MusicVAE(use_hier=True, **TINY)
    z = tf.random.normal([B, Z])
    c = model.decoder.conductor(z)
    assert c.shape == (B, TINY["n_subsequences"], TINY["c_size"])
    # Recurrent: the conductor's outputs differ from step to step (its inputs are all zeros).
    assert not np.allclose(c[:, 0].numpy(), c[:, 1].numpy())
    # Each subsequence is conditioned on its own c_j: with the truth fed in, changing c_2 changes
    # the logits of subsequence 2 only.
    decoder, x = model.decoder, melodies()
    seg = T // TINY["n_subsequences"]
    base = decoder.teacher_forced(x, z).numpy()
    bumped = c.numpy()
    bumped[:, 2] += 1.0
    decoder.conditioning = lambda _: tf.constant(bumped)
    try:
        changed = decoder.teacher_forced(x, z).numpy()
    finally:
        del decoder.conditioning
    diff = np.abs(changed - base).max(axis=(0, 2))
    assert np.all(diff[:2 * seg] == 0) and np.all(diff[3 * seg:] == 0)
    assert np.all(diff[2 * seg:3 * seg] > 0)


def test_mixed_bfloat16_model_trains_and_keeps_its_config():
    full = MusicVAE(use_hier=True, **TINY)
    low = MusicVAE(use_hier=True, precision="mixed_bfloat16", **TINY)
    assert MusicVAE.from_config(low.get_config()).get_config() == low.get_config()
    assert low.decoder.conductor.lstm.matmul_dtype == tf.bfloat16
    for a, b in zip(low.variables, full.variables):
        a.assign(b)
    x = melodies()
    z = tf.random.normal([B, Z], seed=3)
    fast = low.decoder.teacher_forced(x, z).numpy()
    slow, _ = low.decoder.step_loop(z, targets=x, sample_probability=0.0)
    reference = full.decoder.teacher_forced(x, z).numpy()
    assert 0 < np.abs(fast - reference).max() < 0.05
    np.testing.assert_allclose(slow.numpy(), fast, atol=0.05)
    low.compile(optimizer=keras.optimizers.Adam(1e-3))
    logs = low.train_on_batch(x, return_dict=True)
    assert np.isfinite(logs["loss"])
    with pytest.raises(ValueError, match="precision"):
        MusicVAE(precision="float16", **TINY)


def test_decoder_gradients_fast_path_equal_step_loop(model):
    x = melodies()
    z = tf.random.normal([B, Z], seed=4)
    variables = model.decoder.trainable_variables
    grads = []
    for fast in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(z)
            if fast:
                logits = model.decoder.teacher_forced(x, z)
            else:
                logits, _ = model.decoder.step_loop(z, targets=x, sample_probability=0.0)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(x, logits))
        grads.append(tape.gradient(loss, variables + [z]))
    for a, b, v in zip(*grads, variables + [z]):
        if a is None or b is None:  # e.g. the conductor's zero-input kernel
            assert a is None or not np.any(a.numpy()), getattr(v, "path", "z")
            continue
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(),
                                   tf.convert_to_tensor(b).numpy(), atol=1e-4, rtol=1e-4)


def test_uneven_subsequences_raise():
    with pytest.raises(ValueError, match="divisible by n_subsequences"):
        MusicVAE(**{**TINY, "seq_len": 30, "use_hier": True})
    MusicVAE(**{**TINY, "seq_len": 30, "use_hier": False})  # flat: n_subsequences unused
    with pytest.raises(ValueError, match=r"encoder_params.n_subsequences \(4\) must divide "
                                         r"seq_len \(30\)"):
        MusicVAE(**{**TINY, "seq_len": 30, "encoder_params": {"n_subsequences": 4}})


def test_hierarchical_encoder_reads_subsequences_then_their_summaries():
    segs, n_layers = 4, 2
    encoder = Encoder(Z, 8, 16, n_layers, n_subsequences=segs)
    encoder.build()
    x = melodies()
    mu, sigma = encoder(x)
    # The same maths, one subsequence at a time: the bottom level's summary of subsequence j
    # depends on its own steps only, and the top level reads the summaries in order.
    seg_len = T // segs
    summaries = tf.stack([
        encoder._bidirectional(tf.transpose(encoder.embedding(x[:, j * seg_len:(j + 1) * seg_len]),
                                            [1, 0, 2]))
        for j in range(segs)])                                         # [S, B, 2H]
    last = encoder._bidirectional(summaries, level="top_")
    np.testing.assert_allclose(mu.numpy(), encoder.mu_dense(last).numpy(), atol=1e-5)
    np.testing.assert_allclose(sigma.numpy(), encoder.sigma_dense(last).numpy(), atol=1e-5)
    # Two levels of `n_layers` bidirectional layers, each direction its own cell.
    cells = [w for w in encoder.trainable_variables if "recurrent_kernel" in w.path]
    assert len(cells) == 2 * 2 * n_layers
    # Every subsequence reaches the code.
    for j in range(segs):
        changed = x.copy()
        changed[:, j * seg_len] = (changed[:, j * seg_len] + 1) % 90
        assert not np.allclose(encoder(changed)[0].numpy(), mu.numpy())


def test_teacher_forced_fast_path_equals_step_loop(model):
    x = melodies()
    z = tf.random.normal([B, Z], seed=1)
    fast = model.decoder.teacher_forced(x, z)
    slow, tokens = model.decoder.step_loop(z, targets=x, sample_probability=0.0)
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=1e-5)
    np.testing.assert_array_equal(tokens.numpy(), x)


def test_scheduled_sampling_feeds_samples(model):
    x = melodies()
    z = tf.random.normal([B, Z], seed=2)
    seed = tf.constant([5, 6])
    _, free = model.decoder.step_loop(z, seed=seed)
    _, all_sampled = model.decoder.step_loop(z, targets=x, sample_probability=1.0, seed=seed)
    np.testing.assert_array_equal(all_sampled.numpy(), free.numpy())
    _, half = model.decoder.step_loop(z, targets=x, sample_probability=0.5, seed=seed)
    from_truth = np.mean(half.numpy() == x)
    assert 0.3 < from_truth < 0.8


def test_decode_shapes_and_determinism(model):
    z = tf.random.normal([B, Z], seed=3)
    a = model.decode(z, temperature=1.0, rng_seed=7).numpy()
    assert a.shape == (B, T) and a.dtype == np.int32
    assert a.min() >= 0 and a.max() < 90
    np.testing.assert_array_equal(model.decode(z, 1.0, rng_seed=7).numpy(), a)
    assert not np.array_equal(model.decode(z, 1.0, rng_seed=8).numpy(), a)
    greedy = model.decode(z, 0.0, rng_seed=1).numpy()
    np.testing.assert_array_equal(model.decode(z, 0.0, rng_seed=2).numpy(), greedy)
    # Per-example temperatures: rows with temperature 0 are the greedy rows.
    mixed = model.decode(z, np.array([0.0, 1.0, 0.0, 1.0], np.float32), rng_seed=7).numpy()
    np.testing.assert_array_equal(mixed[[0, 2]], greedy[[0, 2]])
    np.testing.assert_array_equal(mixed[[1, 3]], a[[1, 3]])


def test_fit_and_evaluate_log_the_metrics():
    m = MusicVAE(**{**TINY, "use_hier": True,
                    "beta_settings": dict(start_beta=0.0, end_beta=1.0, duration=10)})
    m.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = melodies(8)
    history = m.fit(x, batch_size=4, epochs=1, validation_data=(x,), verbose=0)
    keys = set(history.history)
    assert TRAIN_KEYS <= keys
    assert {"val_" + k for k in TRAIN_KEYS} | {"val_sampled_accuracy"} <= keys
    assert "sampled_accuracy" not in keys
    logs = m.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    assert set(logs) == TRAIN_KEYS | {"sampled_accuracy"}
    assert logs["beta"] == pytest.approx(0.2)  # two steps done: beta_schedule(2, 0, 1, 10)
    assert all(np.isfinite(v) for v in logs.values())


def test_scheduled_sampling_training_and_no_clipping():
    m = MusicVAE(**{**TINY, "sampling_settings": {"schedule": "inverse_sigmoid", "rate": 10.0},
                    "max_grad_norm": None})
    assert not m.teacher_forcing_only
    m.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = [v.numpy().copy() for v in m.trainable_variables]
    logs = m.train_on_batch(melodies(), return_dict=True)
    assert logs["sampling_prob"] == pytest.approx(sampling_probability(0, "inverse_sigmoid", 10.0))
    assert logs["beta"] == pytest.approx(beta_schedule(0, 0.0, 0.2, 20000))
    changed = [not np.array_equal(a, v.numpy()) for a, v in zip(before, m.trainable_variables)]
    assert sum(changed) >= len(changed) - 1  # (the conductor's zero-input kernel may not move)


def test_input_dropout_in_training_only():
    kwargs = {**TINY, "use_hier": True}
    plain = MusicVAE(**kwargs)
    dropping = MusicVAE(**{**kwargs, "decoder_params": {**TINY["decoder_params"],
                                                        "input_dropout": 0.5}})
    assert MusicVAE.from_config(dropping.get_config()).decoder.input_dropout == 0.5
    dropping.set_weights(plain.get_weights())
    x, z = melodies(), tf.random.normal([B, Z], seed=3)
    # Without a seed (inference, evaluation) nothing is dropped.
    np.testing.assert_array_equal(dropping(x).numpy(), plain(x).numpy())
    for m in (plain, dropping):
        m.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert dropping.evaluate(x, verbose=0, return_dict=True)["loss"] == pytest.approx(
        plain.evaluate(x, verbose=0, return_dict=True)["loss"])
    # With one, a seeded draw: the same seed drops the same inputs; the first step's input is
    # the zero embedding either way.
    full = dropping.decoder.teacher_forced(x, z).numpy()
    dropped = dropping.decoder.teacher_forced(x, z, seed=tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(
        dropped, dropping.decoder.teacher_forced(x, z, seed=tf.constant([1, 2])).numpy())
    assert not np.allclose(
        dropped, dropping.decoder.teacher_forced(x, z, seed=tf.constant([5, 6])).numpy())
    np.testing.assert_allclose(dropped[:, 0], full[:, 0], atol=1e-6)
    assert not np.allclose(dropped, full)
    with pytest.raises(ValueError, match=r"input_dropout must be in \[0, 1\), got 1.0"):
        MusicVAE(**{**TINY, "decoder_params": {"input_dropout": 1.0}})


def test_jit_compiled_training():
    one_layer = dict(embed_size=8, hidden_size=16, n_layers=1)
    m = MusicVAE(**{**TINY, "use_hier": True, "encoder_params": one_layer,
                    "decoder_params": one_layer,
                    "conductor_params": dict(hidden_size=16, n_layers=1)})
    m.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    logs = m.train_on_batch(melodies(), return_dict=True)
    assert np.isfinite(logs["loss"])


@pytest.mark.parametrize("precision, encoder_segments",
                         [("float32", 1), ("mixed_bfloat16", 1), ("float32", 4)],
                         ids=["float32", "mixed_bfloat16", "hierarchical-encoder"])
def test_tiny_model_overfits_a_few_melodies(precision, encoder_segments):
    keras.utils.set_random_seed(0)
    params = dict(embed_size=16, hidden_size=64, n_layers=1)
    m = MusicVAE(seq_len=T, z_size=16,
                 encoder_params={**params, "n_subsequences": encoder_segments},
                 decoder_params=params,
                 beta_settings=dict(start_beta=0.0, end_beta=0.0, duration=0), free_bits=0.0,
                 precision=precision)
    m.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = melodies(8, seed=11)
    m.fit(tf.data.Dataset.from_tensors(x).repeat(), epochs=1, steps_per_epoch=300, verbose=0)
    accuracy = np.mean(np.argmax(m(x).numpy(), axis=-1) == x)
    assert accuracy > 0.95
