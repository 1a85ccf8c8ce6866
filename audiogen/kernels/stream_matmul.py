"""`StreamMatMul`: products of a few rows with a large weight, at the speed memory streams it.

Generating with a large SampleRNN (dim 1024) is a loop of products `[num_seqs, K] @ [K, N]` with
weights far larger than the caches, so each product is bound by how fast its weight streams from
memory. TensorFlow's own kernels stream well below that at 1-16 rows here (XLA 13-15 GB/s at one
row and 7.5 GB/s at four, oneDNN 18-20 and 6.5, against 17-21 GB/s for a plain two-thread read),
and their bfloat16 products read no faster than their float32 ones, so halving the bytes gained
nothing. The op in `stream_matmul.cc` reads each weight, packed `[N / 64, K, 64]` so that every
64-column block is one contiguous stream, exactly once per product for all rows, split between
the intra-op threads; bfloat16 weights are widened in registers (half the bytes).

The op runs in TensorFlow graphs, not inside XLA-compiled functions. It is compiled on first use
(~15 s, once; see `audiogen.kernels.compiled`); `load()` returns None, with a warning naming the
reason, when that is impossible (callers then use TensorFlow's products).
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


def pack(op_module, kernel, dtype):
    """`[K, N]` -> `[ceil(N / 64), K, 64]` in `dtype` (columns zero-padded to a whole block)."""
    return op_module.stream_pack(tf.convert_to_tensor(kernel, tf.float32), T=dtype)


def stream_matmul(op_module, x, packed, n):
    """`x` `[..., K]` float32 @ the packed `[K, n]` weight -> `[..., n]` float32.

    With a bfloat16 weight, `x` and the result are rounded to bfloat16 (by the op), as
    `precision.dot` does in bfloat16.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    rows = x if x.shape.rank == 2 else tf.reshape(x, [-1, x.shape[-1]])
    y = op_module.stream_mat_mul(rows, packed)
    if y.shape[-1] != n:
        y = y[:, :n]
    if x.shape.rank == 2:
        return y
    return tf.reshape(y, tf.concat([tf.shape(x)[:-1], [n]], axis=0))


class PackedProducts:
    """`product(x, kernel, dtype)` as `precision.dot`, through `StreamMatMul` for the kernels
    given to the constructor (packed once, where it is called: outside the loops that use them).

    Args:
        op_module: from `load()`.
        kernels: 2-D variables or tensors `[K, N]`.
        dtype: the products' dtype (float32 or bfloat16).
    """

    def __init__(self, op_module, kernels, dtype):
        self._op = op_module
        # Keyed by identity (Keras variables are not hashable by value); the kernel itself is
        # kept so that its id stays its own.
        self._packed = {id(kernel): (kernel, pack(op_module, kernel, dtype))
                        for kernel in kernels}

    def __call__(self, x, kernel, dtype):
        entry = self._packed.get(id(kernel))
        if entry is None:
            return dot(x, kernel, dtype)
        return stream_matmul(self._op, x, entry[1], kernel.shape[-1])
