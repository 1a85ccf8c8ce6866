"""The StreamMatMul op: built from source here, equal to TensorFlow's products, clean failures."""
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

from audiogen.kernels import stream_matmul
from audiogen.precision import dot
from compiled_ops import require_op


@pytest.fixture(scope="module")
def op():
    return require_op("stream_matmul")


@pytest.mark.parametrize("rows", [1, 3, 4, 5, 9])
@pytest.mark.parametrize("k,n", [(37, 70), (64, 64), (200, 130)])
def test_float32_product_equals_matmul(op, rows, k, n):
    """float32: the weight read as it is (panels of 16 rows, column tails masked)."""
    rng = np.random.default_rng(rows * k + n)
    x = rng.normal(size=[rows, k]).astype(np.float32)
    w = rng.normal(size=[k, n]).astype(np.float32)
    plain = stream_matmul.pack(op, w, tf.float32, rows=1)
    assert plain.shape == (k, n)
    y = stream_matmul.stream_matmul(op, x, plain, n)
    assert y.shape == (rows, n) and y.dtype == tf.float32
    np.testing.assert_allclose(y.numpy(), x.astype(np.float64) @ w, rtol=1e-5, atol=1e-4)
    # The packed float32 layout (for several rows) gives the same sums in the same order.
    packed = stream_matmul.pack(op, w, tf.float32, rows=2)
    assert packed.shape == (-(-n // 64), k, 64)
    np.testing.assert_array_equal(y.numpy(),
                                  stream_matmul.stream_matmul(op, x, packed, n).numpy())


@pytest.mark.parametrize("rows", [1, 4, 6])
def test_bfloat16_product_equals_precision_dot(op, rows):
    """bf16 weights: x and the result rounded to bfloat16, as `precision.dot` in bfloat16."""
    rng = np.random.default_rng(rows)
    x = tf.constant(rng.normal(size=[2, rows, 96]).astype(np.float32))   # any leading dims
    w = tf.constant(rng.normal(size=[96, 200]).astype(np.float32))
    y = stream_matmul.stream_matmul(op, x, stream_matmul.pack(op, w, tf.bfloat16), 200)
    assert y.shape == (2, rows, 200)
    expected = dot(x, w, tf.bfloat16).numpy()
    # Same products, float32 sums in another order: equal up to one bfloat16 rounding step.
    np.testing.assert_allclose(y.numpy(), expected, rtol=8e-3, atol=1e-2)
    assert not np.allclose(y.numpy(), dot(x, w, tf.float32).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_pack_layout(op, dtype):
    w = np.arange(5 * 70, dtype=np.float32).reshape(5, 70) / 7.0
    packed = op.stream_pack(w, T=dtype)
    assert packed.shape == (2, 5, 64) and packed.dtype == dtype
    padded = np.concatenate([w, np.zeros([5, 58], np.float32)], axis=1)
    expected = tf.cast(padded.reshape(5, 2, 64).transpose(1, 0, 2), dtype)
    np.testing.assert_array_equal(tf.cast(packed, tf.float32), tf.cast(expected, tf.float32))


def test_packed_products_route_only_their_kernels(op):
    rng = np.random.default_rng(0)
    packed_kernel = tf.Variable(rng.normal(size=[32, 48]).astype(np.float32))
    other = tf.Variable(rng.normal(size=[32, 48]).astype(np.float32))
    products = stream_matmul.PackedProducts(op, [packed_kernel], tf.float32, 3)
    x = tf.constant(rng.normal(size=[3, 32]).astype(np.float32))
    np.testing.assert_allclose(products(x, packed_kernel, tf.float32), x @ packed_kernel,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(products(x, other, tf.float32), dot(x, other, tf.float32))
    # Packed when constructed: a later change of the variable is not seen (the sampler packs
    # once per call).
    packed_kernel.assign_add(tf.ones_like(packed_kernel))
    assert not np.allclose(products(x, packed_kernel, tf.float32), x @ packed_kernel)


def test_ops_reject_mismatched_shapes(op):
    for dtype, product in ((tf.float32, op.stream_mat_mul_plain),
                           (tf.bfloat16, op.stream_mat_mul)):
        weight = stream_matmul.pack(op, np.ones([8, 64], np.float32), dtype, rows=1)
        with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match="8|K|shape"):
            product(tf.ones([2, 9]), weight)


def test_a_failed_build_leaves_nothing_and_falls_back(tmp_path, monkeypatch):
    """A compiler that fails: build() names the source and the error, writes no file; load()
    warns and returns None, and the sampler then refuses engine "stream" and picks "xla"."""
    from audiogen.samplernn import SampleRNN
    from audiogen.samplernn.sampler import choose_engine

    require_op("stream_matmul")   # it must load again at the end
    monkeypatch.setenv("AUDIOGEN_KERNEL_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "false")
    with pytest.raises(RuntimeError, match="stream_matmul.cc failed"):
        stream_matmul.build()
    assert os.listdir(tmp_path) == []
    model = SampleRNN(frame_sizes=[4, 16], dim=512, num_rnn_layers=1, q_levels=16, emb_size=4)
    stream_matmul.load.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert stream_matmul.load() is None
            assert choose_engine(model.dim, "auto") == "xla"
            with pytest.raises(RuntimeError, match="engine 'stream'"):
                choose_engine(model.dim, "stream")
        assert any("StreamMatMul op is unavailable" in str(w.message) for w in caught)
    finally:
        stream_matmul.load.cache_clear()
    monkeypatch.undo()
    assert stream_matmul.load() is not None
    assert choose_engine(model.dim, "auto") == "stream"


def test_a_build_is_keyed_by_the_headers_beside_its_source(tmp_path, monkeypatch):
    """A changed header (stream_blocks.h is shared by two op libraries) means a new build."""
    from audiogen.kernels import compiled
    require_op("stream_matmul")   # a working compiler

    monkeypatch.setenv("AUDIOGEN_KERNEL_DIR", str(tmp_path / "built"))
    source = tmp_path / "lib.cc"
    source.write_text('#include "shared.h"\nint answer() { return value(); }\n')
    (tmp_path / "shared.h").write_text("inline int value() { return 1; }\n")
    first = compiled.build(str(source))
    assert compiled.build(str(source)) == first
    (tmp_path / "shared.h").write_text("inline int value() { return 2; }\n")
    second = compiled.build(str(source))
    assert second != first and os.path.exists(first) and os.path.exists(second)
