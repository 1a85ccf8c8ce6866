"""Matrix-product precision: float32, or bfloat16 / float16 products with float32 elsewhere.

`"mixed_bfloat16"` rounds both operands of the large matrix products to bfloat16 (8-bit
mantissa) and returns float32 results; variables, recurrent states, nonlinearities, the loss
and the optimizer stay float32. On CPUs with AMX or AVX-512 BF16 the products run faster.
`"mixed_float16"` does the same in float16 (10-bit mantissa, narrow range), for GPUs with tensor
cores; its training uses loss scaling (`audiogen.loss_scaling`). Unlike Keras's mixed dtype
policies, activations between products stay float32, so recurrences do not accumulate rounding
from step to step. The models keep float32 whatever Keras's global dtype policy says.
"""
import contextlib
import functools

import keras
import tensorflow as tf

from audiogen.config import PRECISIONS


def builds_float32_layers(init):
    """Decorate a model's `__init__` so that it and every layer it creates are float32
    (`float32_layers`)."""
    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        with float32_layers():
            init(self, *args, **kwargs)
    return wrapped


@contextlib.contextmanager
def float32_layers():
    """Layers built inside take float32 as their dtype policy, whatever Keras's global policy is
    (a global `mixed_float16` would make their products half precision, which this package's
    code, written for float32 activations, does not expect)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def matmul_dtype(precision):
    """The dtype matrix products run in for `precision` (one of `PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return {"mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}.get(precision,
                                                                           tf.float32)


def uses_loss_scaling(precision):
    """True for the precisions whose training scales the loss (float16 products)."""
    return precision == "mixed_float16"


def to_matmul_dtype(x, dtype):
    """`x` (a tensor or variable) cast to `dtype` when it differs."""
    x = tf.convert_to_tensor(x)
    return x if x.dtype == dtype else tf.cast(x, dtype)


def dot(x, kernel, dtype):
    """`x @ kernel` over the last axis of `x` (any leading dims), computed in `dtype`.

    Returns float32. `kernel` may already be in `dtype` (cast once outside a loop).
    """
    if dtype == tf.float32:
        return tf.tensordot(x, kernel, 1)
    product = tf.tensordot(to_matmul_dtype(x, dtype), to_matmul_dtype(kernel, dtype), 1)
    return tf.cast(product, tf.float32)


def matmul(a, b, dtype, **kwargs):
    """`tf.matmul(a, b, **kwargs)` computed in `dtype`; returns float32.

    Operands already in `dtype` (e.g. a kernel cast once before a loop) are not cast again.
    """
    if dtype == tf.float32:
        return tf.matmul(a, b, **kwargs)
    product = tf.matmul(to_matmul_dtype(a, dtype), to_matmul_dtype(b, dtype), **kwargs)
    return tf.cast(product, tf.float32)


def column_sums(x):
    """Sum of `x` `[..., n]` over all its leading axes -> float32 `[n]`, as one product with a row
    of ones: under XLA on CPU a reduction over many rows runs several times slower than the
    product."""
    rows = tf.reshape(tf.cast(x, tf.float32), [-1, x.shape[-1]])
    return tf.matmul(tf.ones([1, tf.shape(rows)[0]]), rows)[0]


def add_bias(x, bias):
    """`x + bias` over the last axis of `x`; the gradient of `bias` is `column_sums`."""
    return _add_bias(x, tf.convert_to_tensor(bias))


@tf.custom_gradient
def _add_bias(x, bias):
    return x + bias, lambda dy: (dy, column_sums(dy))


def dense_relu(x, kernel, bias, dtype):
    """`relu(x @ kernel + bias)` over the last axis of `x`, its products computed in `dtype`.

    float32: the plain formula. bfloat16: returns the activations as bfloat16, which is what the
    next product reads anyway (`relu` and rounding commute), so the forward pass and the gradient
    (hand-written: one masked pass, two products, one column sum) skip the float32 copies and
    casts that automatic differentiation of the plain formula would make. The values and
    gradients are the same as those of `relu(dot(x, kernel, dtype) + bias)`.
    """
    if dtype == tf.float32:
        return tf.nn.relu(add_bias(tf.tensordot(x, kernel, 1), bias))
    return _dense_relu_low(to_matmul_dtype(x, dtype), to_matmul_dtype(kernel, dtype),
                           tf.convert_to_tensor(bias))


@tf.custom_gradient
def _dense_relu_low(x, kernel, bias):
    rows = tf.reshape(x, [-1, x.shape[-1]])
    y = tf.cast(tf.nn.relu(tf.cast(tf.matmul(rows, kernel), tf.float32) + bias), x.dtype)

    def grad(dy):
        dz = tf.where(y > 0, tf.cast(tf.reshape(dy, tf.shape(y)), y.dtype), tf.zeros([], y.dtype))
        dx = tf.reshape(tf.matmul(dz, kernel, transpose_b=True), tf.shape(x))
        return dx, tf.matmul(rows, dz, transpose_a=True), column_sums(dz)

    out_shape = tf.concat([tf.shape(x)[:-1], tf.shape(kernel)[-1:]], axis=0)
    return tf.reshape(y, out_shape), grad
