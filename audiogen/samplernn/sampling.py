"""Drawing one sample per sequence from a softmax, by inverse CDF on given uniform numbers.

Generation draws all its uniform numbers before the loop (`tf.random.stateless_uniform`), so a
fixed seed gives the same audio with either engine. `tf.random.stateless_categorical` computes
the same distribution but draws `q_levels` random numbers per sample, which under XLA on CPU made
it the costliest op of the sampling loop.
"""
import numpy as np
import tensorflow as tf


def sample_categorical(logits, inv_temp, uniform):
    """One draw per row from `softmax(logits * inv_temp)` by inverse CDF.

    Args: `logits` `[B, q]`, `inv_temp` `[B]`, `uniform` `[B]` numbers in [0, 1). Returns int32
    `[B]`. The CDF is searched in two levels (blocks of ~sqrt(q) levels, then inside the chosen
    block), each a short cumulative sum, because a length-q `cumsum` lowers to a slow O(q^2)
    reduce-window under XLA on CPU. `tf.random.stateless_categorical` would draw q random
    numbers per row (see the module).
    """
    batch, q = tf.shape(logits)[0], logits.shape[-1]
    block = int(np.ceil(np.sqrt(q)))
    blocks = -(-q // block)
    scaled = logits * inv_temp[:, None]
    weights = tf.exp(scaled - tf.reduce_max(scaled, axis=-1, keepdims=True))
    if blocks * block > q:
        weights = tf.pad(weights, [[0, 0], [0, blocks * block - q]])
    weights = tf.reshape(weights, [batch, blocks, block])
    block_sums = tf.reduce_sum(weights, axis=-1)                               # [B, blocks]
    inclusive = _short_cumsum(block_sums)
    target = uniform[:, None] * inclusive[:, -1:]                               # [B, 1]
    chosen = tf.minimum(tf.reduce_sum(tf.cast(inclusive <= target, tf.int32), -1), blocks - 1)
    inner = (_short_cumsum(tf.gather(weights, chosen, batch_dims=1))
             + tf.gather(inclusive - block_sums, chosen, batch_dims=1)[:, None])
    index = chosen * block + tf.reduce_sum(tf.cast(inner <= target, tf.int32), -1)
    return tf.minimum(index, q - 1)


def _short_cumsum(x):
    """Inclusive cumulative sum of `x` `[B, n]` along its last axis for small n, as a masked sum
    (`[B, n, n]`): under XLA a few fused loops, where a product with a triangular matrix would
    call the runtime's matrix product for a handful of numbers."""
    n = x.shape[-1]
    return tf.reduce_sum(x[:, :, None] * np.triu(np.ones([n, n], np.float32)), axis=1)
