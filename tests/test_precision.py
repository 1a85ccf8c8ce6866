"""Matrix-product precision: bfloat16 products with float32 results, and bad names refused."""
import numpy as np
import pytest
import tensorflow as tf

from audiogen.precision import dot, matmul_dtype, to_matmul_dtype


def test_float32_is_the_plain_product():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=[2, 3, 8]).astype(np.float32), rng.normal(size=[8, 5]).astype(np.float32)
    np.testing.assert_allclose(dot(x, w, matmul_dtype("float32")), x @ w, rtol=1e-6)


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


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"precision must be one of .*'float16'"):
        matmul_dtype("float16")
