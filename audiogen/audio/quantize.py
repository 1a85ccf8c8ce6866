"""Sample quantization, both directions, as vectorized TensorFlow ops.

`mu-law` companding (ITU-T G.711 style, mu = 255) always uses 256 levels; `linear` uses any
`q_levels >= 2`. Levels are integers in `[0, q_levels - 1]`; `quantize(dequantize(q)) == q` for
every level `q`, and `dequantize(quantize(x))` is the level nearest to `x` on the quantizer's scale
(the companded scale for mu-law, the sample scale for linear).
"""
import tensorflow as tf

MU_LAW_LEVELS = 256
Q_TYPES = ("mu-law", "linear")


def num_levels(q_type, q_levels):
    """The number of levels actually used: mu-law forces 256."""
    _check_q_type(q_type)
    return MU_LAW_LEVELS if q_type == "mu-law" else int(q_levels)


def quantize(samples, q_type="mu-law", q_levels=256):
    """Float samples in [-1, 1] (any shape; clipped) -> int32 levels of the same shape."""
    levels = num_levels(q_type, q_levels)
    x = tf.clip_by_value(tf.convert_to_tensor(samples, tf.float32), -1.0, 1.0)
    if q_type == "mu-law":
        mu = float(levels - 1)
        x = tf.sign(x) * tf.math.log1p(mu * tf.abs(x)) / tf.math.log1p(mu)
    q = tf.floor((x + 1.0) / 2.0 * (levels - 1) + 0.5)
    return tf.cast(tf.clip_by_value(q, 0.0, levels - 1.0), tf.int32)


def dequantize(levels_tensor, q_type="mu-law", q_levels=256):
    """Integer levels (any shape) -> float32 samples in [-1, 1] of the same shape."""
    levels = num_levels(q_type, q_levels)
    y = tf.cast(levels_tensor, tf.float32) * (2.0 / (levels - 1)) - 1.0
    if q_type == "mu-law":
        mu = float(levels - 1)
        y = tf.sign(y) * tf.math.expm1(tf.abs(y) * tf.math.log1p(mu)) / mu
    return y


def silence_level(q_type="mu-law", q_levels=256):
    """The level that 0.0 quantizes to (used to pad pieces with silence)."""
    return int(quantize(0.0, q_type, q_levels))


def _check_q_type(q_type):
    if q_type not in Q_TYPES:
        raise ValueError(f"q_type must be one of {Q_TYPES}, got {q_type!r}")
