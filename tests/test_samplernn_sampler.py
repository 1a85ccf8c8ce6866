"""SampleRNN sampler: shapes, priming, fast path == plain model, temperature, determinism."""
import numpy as np
import pytest
import tensorflow as tf

from audiogen.audio.quantize import silence_level
from audiogen.kernels import sample_frame
from audiogen.samplernn import SampleRNN, generate
from audiogen.samplernn.sampler import generation_groups
from audiogen.samplernn.sampling import sample_categorical
from compiled_ops import require_op, stream_engine

TINY = dict(frame_sizes=[4, 16], dim=16, rnn_type="gru", num_rnn_layers=2, q_type="linear",
            q_levels=16, emb_size=8, skip_conn=False, seq_len=32, max_grad_norm=1.0)


def tiny(**overrides):
    # Fixed weights, so that every run checks the same model: with some random weights one
    # logit in a few thousand misses the bfloat16 tolerance of the fast-path test.
    tf.keras.utils.set_random_seed(0)
    model = SampleRNN(**{**TINY, **overrides}).build_for_batch(1)
    rng = np.random.default_rng(0)
    for v in model.trainable_variables:        # non-trivial initial states and output biases
        if "initial" in v.path or "output_bias" in v.path:
            v.assign(rng.normal(size=v.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def model():
    return tiny()


def teacher_forced_logits(model, levels, pad):
    """The plain model's logits for every sample after `pad` leading silence + top frame."""
    top = model.frame_sizes[-1]
    silence = silence_level(model.q_type, model.q_levels)
    total = levels.shape[1]
    full_len = -(-(pad + total) // top) * top
    x = np.full([levels.shape[0], top + full_len], silence, np.int32)
    x[:, top + pad:top + pad + total] = levels
    return model(x)[0].numpy()[:, pad:pad + total]


def test_shapes_and_prime_is_kept(model):
    out = generate(model, 40, [1.0, 0.7, 1.3])
    assert out.shape == (3, 40) and out.dtype == tf.int32
    assert 0 <= out.numpy().min() and out.numpy().max() < model.q_levels
    prime = np.random.default_rng(1).integers(0, 16, [3, 21]).astype(np.int32)
    out = generate(model, 40, [1.0, 0.7, 1.3], prime_levels=prime)
    assert out.shape == (3, 61)
    np.testing.assert_array_equal(out.numpy()[:, :21], prime)
    # A single prime row is shared by every sequence.
    out = generate(model, 5, [1.0, 1.0], prime_levels=prime[0])
    np.testing.assert_array_equal(out.numpy()[:, :21], np.stack([prime[0]] * 2))


@pytest.mark.parametrize("overrides,prime_len", [
    ({}, 0), ({}, 21), ({"rnn_type": "lstm", "skip_conn": True}, 16),
    ({"frame_sizes": [4, 8, 16]}, 9), ({"frame_sizes": [8], "num_rnn_layers": 1}, 0),
    ({"precision": "mixed_bfloat16", "frame_sizes": [4, 8, 16]}, 9),
])
@pytest.mark.parametrize("engine", ["xla", stream_engine()])
def test_fast_path_logits_equal_the_plain_model(overrides, prime_len, engine):
    """The compiled loop (folded tables, per-frame tier steps, priming) == teacher forcing,
    with either engine.

    With bfloat16 products the two paths round at different points (the sampler folds layers
    in float32), so they agree to bfloat16's precision rather than exactly.
    """
    model = tiny(**overrides)
    prime = np.random.default_rng(2).integers(0, 16, [2, prime_len]).astype(np.int32)
    out, logits = generate(model, 50, [1.0, 0.8], prime_levels=prime if prime_len else None,
                           rng_seed=3, return_logits=True, engine=engine)
    assert logits.shape == (2, 50, 16)
    top = model.frame_sizes[-1]
    pad = (-prime_len) % top
    expected = teacher_forced_logits(model, out.numpy(), pad)[:, prime_len:]
    exact = overrides.get("precision", "float32") == "float32"
    np.testing.assert_allclose(logits.numpy(), expected, atol=2e-4 if exact else 3e-2,
                               rtol=1e-4 if exact else 2e-2)


def test_prime_primes_the_state(model):
    """Different seeds -> different continuations' distributions (the prime is really used)."""
    a = np.full([1, 32], 2, np.int32)
    b = np.full([1, 32], 13, np.int32)
    _, la = generate(model, 8, [1.0], prime_levels=a, return_logits=True)
    _, lb = generate(model, 8, [1.0], prime_levels=b, return_logits=True)
    assert np.abs(la.numpy()[:, 0] - lb.numpy()[:, 0]).max() > 1e-3


def test_generation_ignores_leftover_training_state(model):
    first = generate(model, 30, [1.0], rng_seed=5).numpy()
    x = np.random.default_rng(0).integers(0, 16, [1, 48]).astype(np.int32)
    model.compile(optimizer="sgd")
    model.evaluate(tf.data.Dataset.from_tensors((x, True)), verbose=0)  # fills carried state
    np.testing.assert_array_equal(generate(model, 30, [1.0], rng_seed=5).numpy(), first)


def test_determinism_and_caching(model):
    a = generate(model, 64, [1.0, 1.0], rng_seed=7).numpy()
    b = generate(model, 64, [1.0, 1.0], rng_seed=7).numpy()
    c = generate(model, 64, [1.0, 1.0], rng_seed=8).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert (a[0] != a[1]).any()                 # sequences of one batch differ
    loop = model._untracked.generate_fns[(2, 64 // model.top_frame, False, "xla")]
    assert loop.chunk.experimental_get_tracing_count() == 1


def test_engines_draw_the_same_audio(model):
    """Same model, prime and rng_seed: the same samples from the XLA and the stream engine (the
    uniform numbers are drawn before the loop, once, for both)."""
    require_op("stream_matmul")
    prime = np.random.default_rng(4).integers(0, 16, [2, 7]).astype(np.int32)
    runs = [generate(model, 70, [1.0, 0.6], prime_levels=prime, rng_seed=9, engine=engine).numpy()
            for engine in ("xla", "stream")]
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("engine", ["xla", stream_engine()])
def test_groups_generate_the_same_audio_and_logits(model, engine):
    """Sequences generated as concurrent groups (here 2 and 3, of unequal sizes) == one batch:
    every sequence keeps its prime row, temperature and uniform numbers."""
    prime = np.random.default_rng(6).integers(0, 16, [5, 7]).astype(np.int32)
    temps = [1.0, 0.6, 1.4, 0.9, 2.0]
    runs = [generate(model, 40, temps, prime_levels=prime, rng_seed=4, return_logits=True,
                     engine=engine, groups=groups) for groups in (1, 2, 3)]
    assert (2, 3, True, engine) in model._untracked.generate_fns     # 40 samples: 3 top frames
    for out, logits in runs[1:]:
        np.testing.assert_array_equal(out.numpy(), runs[0][0].numpy())
        np.testing.assert_allclose(logits.numpy(), runs[0][1].numpy(), atol=1e-6)


def test_generation_groups():
    assert generation_groups(16, "xla", cores=2) == 2
    assert generation_groups(2, "xla", cores=2) == 2
    assert generation_groups(1, "xla", cores=2) == 1
    assert generation_groups(16, "xla", cores=8) == 8
    assert generation_groups(16, "stream", cores=2) == 1


def test_stream_engine_without_the_frame_op(monkeypatch):
    """Where the SampleFrame op cannot be built, the stream engine's per-sample loop is the
    XLA-compiled one: the same audio as with the op."""
    require_op("sample_frame")
    model = tiny()
    prime = np.random.default_rng(5).integers(0, 16, [2, 7]).astype(np.int32)
    with_op = generate(model, 70, [1.0, 0.6], prime_levels=prime, rng_seed=9, engine="stream")
    monkeypatch.setattr(sample_frame, "load", lambda: None)
    model._untracked.generate_fns.clear()
    without = generate(model, 70, [1.0, 0.6], prime_levels=prime, rng_seed=9, engine="stream")
    np.testing.assert_array_equal(with_op.numpy(), without.numpy())


def test_temperature_changes_entropy(model):
    out = generate(model, 1500, [0.3, 1.0, 3.0], rng_seed=1).numpy()

    def entropy(row):
        p = np.bincount(row, minlength=16) / row.size
        p = p[p > 0]
        return -(p * np.log(p)).sum()

    h = [entropy(row) for row in out]
    assert h[0] < h[1] - 0.2 and h[1] < h[2] - 0.2, h


@pytest.mark.parametrize("q", [16, 10, 256])
def test_sample_categorical_matches_softmax(q):
    rng = np.random.default_rng(q)
    logits = rng.normal(size=[q]).astype(np.float32) * 2
    logits[1] = -1e9                            # a zero-probability level is never drawn
    n = 40000
    fn = tf.function(sample_categorical, jit_compile=True)
    draws = fn(tf.constant(np.tile(logits, [n, 1])), tf.fill([n], 0.8),
               tf.random.stateless_uniform([n], seed=[1, 2])).numpy()
    freq = np.bincount(draws, minlength=q) / n
    p = np.exp(0.8 * (logits - logits.max()))
    p /= p.sum()
    assert freq[1] == 0
    np.testing.assert_allclose(freq, p, atol=0.012)


def test_rejects_bad_arguments(model):
    with pytest.raises(ValueError):
        generate(model, 10, [])
    with pytest.raises(ValueError):
        generate(model, 10, [0.0])
    with pytest.raises(ValueError):
        generate(model, 10, [1.0], prime_levels=np.full([1, 4], 99))
    with pytest.raises(ValueError, match="engine"):
        generate(model, 10, [1.0], engine="gpu")
    with pytest.raises(ValueError, match="groups"):
        generate(model, 10, [1.0, 1.0], groups=3)
