"""`StreamMatMul`: products of a few rows with a large weight, at the speed memory streams it.

Generating with a large SampleRNN (dim 1024) is a loop of products `[num_seqs, K] @ [K, N]` with
weights far larger than the caches, so each product is bound by how fast its weight streams from
memory. TensorFlow's own kernels stream well below that speed at 1-16 rows (and below a plain
two-thread read of the same bytes), and their bfloat16 products read no faster than their
float32 ones, so halving the bytes gains nothing with them. The ops in `stream_matmul.cc` read
each weight exactly once per product for all rows, split between the intra-op threads: packed
`[N / 64, K, 64]` (every 64-column block one contiguous stream), bfloat16 weights widened in
registers (half the bytes); or, for one row in float32, the weight as it is, in panels of rows.

The op runs in TensorFlow graphs, not inside XLA-compiled functions. It is compiled on first use
(once; see `audiogen.kernels.compiled`); `load()` returns None, with a warning naming the
reason, when that is impossible. Whether it is used is decided by `audiogen.kernels.dispatch`.
"""
import functools
import os

import tensorflow as tf

from audiogen.kernels import compiled
from audiogen.precision import dot

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stream_matmul.cc")


def build():
    """Compile the op library if it is not built yet; returns its path (see `compiled.build`)."""
    return compiled.build(SOURCE)


@functools.lru_cache(maxsize=None)
def load():
    """The loaded op module (built on first use), or None with a warning saying why."""
    return compiled.load(SOURCE, "StreamMatMul", "TensorFlow's matrix products")


def pack(op_module, kernel, dtype, rows=1):
    """The weight `[K, N]` as the ops read it for products with `rows` rows in `dtype`: packed
    `[ceil(N / 64), K, 64]` (columns zero-padded to a whole block), or, in float32 for one row,
    as it is (`StreamMatMulPlain` reads it in place, without a copy, which streams one row
    fastest; for several rows the packed layout streams faster)."""
    kernel = tf.convert_to_tensor(kernel, tf.float32)
    if dtype == tf.float32 and rows == 1:
        return kernel
    return op_module.stream_pack(kernel, T=dtype)


def stream_matmul(op_module, x, packed, n):
    """`x` `[..., K]` float32 @ the `[K, n]` weight from `pack` -> `[..., n]` float32.

    With a bfloat16 weight, `x` and the result are rounded to bfloat16 (by the op), as
    `precision.dot` does in bfloat16.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    rows = x if x.shape.rank == 2 else tf.reshape(x, [-1, x.shape[-1]])
    if packed.shape.rank == 2:
        y = op_module.stream_mat_mul_plain(rows, packed)
    else:
        y = op_module.stream_mat_mul(rows, packed)
    if y.shape[-1] != n:
        y = y[:, :n]
    if x.shape.rank == 2:
        return y
    return tf.reshape(y, tf.concat([tf.shape(x)[:-1], [n]], axis=0))


class PackedProducts:
    """`product(x, kernel, dtype)` as `precision.dot`, through `StreamMatMul` for the kernels
    given to the constructor (packed once, where it is called: outside the loops that use them;
    float32 weights are read as they are).

    Args:
        op_module: from `load()`.
        kernels: 2-D variables or tensors `[K, N]`.
        dtype: the products' dtype (float32 or bfloat16).
        rows: the rows of the products' `x` (the layout depends on it, see `pack`).
        fallback: `product(x, kernel, dtype)` for other kernels (another `PackedProducts`, or
            `precision.dot`).
        packed: optional, the `kernels` as `pack` returned them in another call (a function
            called many times then takes them as arguments instead of packing them each time).
    """

    def __init__(self, op_module, kernels, dtype, rows, fallback=dot, packed=None):
        self._op = op_module
        self._fallback = fallback
        if packed is None:
            packed = [pack(op_module, kernel, dtype, rows) for kernel in kernels]
        # Keyed by identity (Keras variables are not hashable by value); the kernel itself is
        # kept so that its id stays its own.
        self._packed = {id(kernel): (kernel, p) for kernel, p in zip(kernels, packed)}

    def __call__(self, x, kernel, dtype):
        entry = self._packed.get(id(kernel))
        if entry is None:
            return self._fallback(x, kernel, dtype)
        return stream_matmul(self._op, x, entry[1], kernel.shape[-1])
