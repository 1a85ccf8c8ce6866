"""The SampleFrame op: one bottom frame of samples == the sampler's maths, step by step."""
import numpy as np
import pytest
import tensorflow as tf

from audiogen.precision import dense_relu, dot
from audiogen.samplernn.sampling import sample_categorical
from compiled_ops import require_op


@pytest.fixture(scope="module")
def ops():
    return require_op("sample_frame"), require_op("stream_matmul")


def frame_inputs(f0, b, q, dim, seed):
    rng = np.random.default_rng(seed)
    normal = lambda *shape, scale=1.0: tf.constant(  # noqa: E731
        (scale * rng.normal(size=shape)).astype(np.float32))
    return dict(table=normal(f0 * q, dim, scale=0.3), cond=normal(b, f0, dim, scale=0.3),
                window=tf.constant(rng.integers(0, q, [f0, b]).astype(np.int32)),
                uniform=tf.constant(rng.random([f0, b]).astype(np.float32)),
                inv_temp=tf.constant(rng.uniform(0.5, 2.0, [b]).astype(np.float32)),
                hidden_kernel=normal(dim, dim, scale=dim ** -0.5),
                hidden_bias=normal(dim, scale=0.1),
                output_kernel=normal(dim, q, scale=3 * dim ** -0.5),
                output_bias=normal(q, scale=0.5))


def reference_frame(inputs, dtype, forced=None):
    """The sampler's per-sample loop written out with TensorFlow's operations; with `forced`
    (`[f0, b]` samples), the window advances by those instead of its own draws."""
    window = inputs["window"].numpy()
    f0, q = window.shape[0], inputs["output_bias"].shape[0]
    table = inputs["table"].numpy().reshape(f0, q, -1)
    samples, logits = [], []
    for i in range(f0):
        rows = table[np.arange(f0)[:, None], window]                      # [f0, b, dim]
        h1 = tf.nn.relu(rows.sum(axis=0) + inputs["cond"][:, i])
        h2 = tf.cast(dense_relu(h1, inputs["hidden_kernel"], inputs["hidden_bias"], dtype),
                     tf.float32)
        step = dot(h2, inputs["output_kernel"], dtype) + inputs["output_bias"]
        sample = sample_categorical(step, inputs["inv_temp"], inputs["uniform"][i]).numpy()
        drawn = sample if forced is None else forced[i]
        window = np.concatenate([window[1:], drawn[None]], axis=0)
        samples.append(sample)
        logits.append(step.numpy())
    return np.stack(samples), np.stack(logits)


def run_op(ops, inputs, dtype, **attrs):
    frame_op, matmul_op = ops
    packed = {name: matmul_op.stream_pack(inputs[name], T=dtype)
              for name in ("hidden_kernel", "output_kernel")}
    return frame_op.sample_frame(**{**inputs, **packed}, **attrs)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("f0,b,q,dim", [(4, 1, 16, 16), (3, 5, 200, 80), (16, 4, 256, 136)])
def test_frame_equals_the_samplers_maths(ops, dtype, f0, b, q, dim):
    """float32: samples equal, logits equal up to summation order. bfloat16 (whose products
    round differently with and without the CPU's bfloat16 instructions, so that a draw near a
    boundary of the distribution may differ): logits within a bfloat16 rounding step of the
    sampler's maths on the op's own samples, and each sample the sampler's draw from the op's
    logits. With column tails (q, dim not multiples of 64) and row groups of 4 plus a tail."""
    inputs = frame_inputs(f0, b, q, dim, seed=f0 * b + q)
    samples, logits = run_op(ops, inputs, dtype)
    assert samples.shape == (f0, b) and samples.dtype == tf.int32
    assert logits.shape == (f0, b, q) and logits.dtype == tf.float32
    if dtype == tf.float32:
        expected_samples, expected_logits = reference_frame(inputs, dtype)
        np.testing.assert_array_equal(samples.numpy(), expected_samples)
        np.testing.assert_allclose(logits.numpy(), expected_logits, rtol=1e-5, atol=1e-5)
    else:
        _, expected_logits = reference_frame(inputs, dtype, forced=samples.numpy())
        np.testing.assert_allclose(logits.numpy(), expected_logits, rtol=2e-2, atol=3e-2)
        for i in range(f0):
            drawn = sample_categorical(logits[i], inputs["inv_temp"], inputs["uniform"][i])
            np.testing.assert_array_equal(samples.numpy()[i], drawn.numpy())
    assert len(np.unique(samples.numpy())) > 1                # the draws do vary


def test_without_draws_the_window_is_kept(ops):
    """draw=False (the benchmark's floor): the products only; every step sees the same window."""
    inputs = frame_inputs(4, 2, 16, 16, seed=1)
    samples, logits = run_op(ops, inputs, tf.float32, draw=False)
    np.testing.assert_array_equal(samples.numpy(), inputs["window"].numpy())
    h1 = tf.nn.relu(tf.reduce_sum(tf.gather(tf.reshape(inputs["table"], [4, 16, 16]),
                                            inputs["window"], axis=1, batch_dims=1), axis=0)
                    + inputs["cond"][:, 2])
    h2 = dense_relu(h1, inputs["hidden_kernel"], inputs["hidden_bias"], tf.float32)
    expected = dot(h2, inputs["output_kernel"], tf.float32) + inputs["output_bias"]
    np.testing.assert_allclose(logits.numpy()[2], expected.numpy(), rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_refused(ops):
    inputs = frame_inputs(4, 2, 16, 16, seed=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="window levels must lie in"):
        run_op(ops, {**inputs, "window": inputs["window"] + 16}, tf.float32)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="cond"):
        run_op(ops, {**inputs, "cond": inputs["cond"][:, :3]}, tf.float32)
    frame_op, matmul_op = ops
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="hidden_kernel"):
        frame_op.sample_frame(**{**inputs,
                                 "hidden_kernel": matmul_op.stream_pack(
                                     tf.zeros([8, 16]), T=tf.float32),
                                 "output_kernel": matmul_op.stream_pack(
                                     inputs["output_kernel"], T=tf.float32)})


def test_repeated_runs_are_identical(ops):
    """The threads split every step's work anew: many runs of one frame give the same samples
    and logits (a unit run twice or too late would change them)."""
    inputs = frame_inputs(16, 7, 130, 200, seed=3)
    first = [t.numpy() for t in run_op(ops, inputs, tf.float32)]
    for _ in range(30):
        again = run_op(ops, inputs, tf.float32)
        np.testing.assert_array_equal(again[0].numpy(), first[0])
        np.testing.assert_array_equal(again[1].numpy(), first[1])
