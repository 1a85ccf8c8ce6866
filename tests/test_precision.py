"""Matrix-product precision: bfloat16 products with float32 results, and bad names refused."""
import numpy as np
import pytest
import tensorflow as tf

from audiogen.precision import (
    add_bias, column_sums, dense_relu, dot, matmul, matmul_dtype, to_matmul_dtype)


def test_float32_is_the_plain_product():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=[2, 3, 8]).astype(np.float32), rng.normal(size=[8, 5]).astype(np.float32)
    # Up to summation order, which depends on the CPU's vector width.
    np.testing.assert_allclose(dot(x, w, matmul_dtype("float32")), x @ w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("precast", [False, True])
def test_bfloat16_products_are_float32_and_close(precast):
    rng = np.random.default_rng(1)
    x = rng.normal(size=[4, 64]).astype(np.float32)
    w = tf.Variable(rng.normal(size=[64, 32]).astype(np.float32))
    dtype = matmul_dtype("mixed_bfloat16")
    kernel = to_matmul_dtype(w, dtype) if precast else w
    out = dot(x, kernel, dtype)
    assert out.dtype == tf.float32 and dtype == tf.bfloat16
    exact = x @ w.numpy()
    # Operands rounded to 8 mantissa bits: errors ~2^-9 relative per term, far from exact zero.
    err = np.abs(out.numpy() - exact)
    assert err.max() < 0.05 * np.abs(exact).max() and err.max() > 0


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("jit", [False, True])
def test_dense_relu_matches_the_plain_formula(precision, jit):
    """Same values and gradients (x, kernel, bias) as `relu(dot(x, kernel) + bias)`.

    In bfloat16 the activations come out rounded to bfloat16 (as the next product reads them),
    and the upstream gradient is bfloat16-valued (as the next product's gradient is)."""
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=[3, 5, 16]).astype(np.float32))
    kernel = tf.Variable(rng.normal(size=[16, 24]).astype(np.float32))
    bias = tf.Variable(rng.normal(size=[24]).astype(np.float32))
    dtype = matmul_dtype(precision)
    upstream = tf.cast(tf.cast(rng.normal(size=[3, 5, 24]).astype(np.float32), dtype), tf.float32)

    def run(fn):
        @tf.function(jit_compile=jit)
        def values_and_grads(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.cast(fn(x), tf.float32)
                loss = tf.reduce_sum(y * upstream)
            return (y,) + tuple(tape.gradient(loss, [x, kernel, bias]))
        return [t.numpy() for t in values_and_grads(x)]

    fast = run(lambda x: dense_relu(x, kernel, bias, dtype))
    plain = run(lambda x: tf.cast(tf.nn.relu(dot(x, kernel, dtype) + bias), dtype))
    assert fast[0].shape == (3, 5, 24) and (fast[0] == 0).any() and (fast[0] > 0).any()
    for got, want in zip(fast, plain):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_add_bias_and_column_sums_match_the_plain_formulas(jit):
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=[3, 70, 6]).astype(np.float32))
    bias = tf.Variable(rng.normal(size=[6]).astype(np.float32))
    weights = tf.constant(rng.normal(size=[3, 70, 6]).astype(np.float32))

    @tf.function(jit_compile=jit)
    def run(plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = x + bias if plain else add_bias(x, bias)
            loss = tf.reduce_sum(tf.sin(y) * weights)
        return [y] + tape.gradient(loss, [x, bias])

    for fast, plain in zip(run(False), run(True)):
        np.testing.assert_allclose(fast.numpy(), plain.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(column_sums(x).numpy(), x.numpy().sum(axis=(0, 1)), rtol=1e-5)
    low = tf.cast(x, tf.bfloat16)
    np.testing.assert_allclose(column_sums(low).numpy(),
                               tf.cast(low, tf.float32).numpy().sum(axis=(0, 1)), rtol=1e-5)


def test_matmul_in_bfloat16_returns_float32():
    a, b = tf.ones([2, 3]) * 1.001, tf.ones([3, 4])
    assert matmul(a, b, tf.bfloat16).dtype == tf.float32
    np.testing.assert_array_equal(matmul(a, b, tf.bfloat16).numpy(), 3.0)  # 1.001 rounds to 1
    np.testing.assert_allclose(matmul(a, b, tf.float32).numpy(), 3.003, rtol=1e-6)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"precision must be one of .*'float16'"):
        matmul_dtype("float16")
