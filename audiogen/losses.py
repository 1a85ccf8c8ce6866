"""Loss maths shared by the models: pure functions, tested on their own."""
import math

LN2 = math.log(2.0)


def nats_to_bits(nats):
    """Convert a loss in nats (natural-log cross-entropy) to bits: `nats / ln 2`."""
    return nats / LN2


# --- MusicVAE -------------------------------------------------------------------------------------
# Each function accepts python numbers, numpy arrays or tensors (also inside a tf.function) and
# returns a tensor (a python float for python-number inputs where noted).

def _tf():
    import tensorflow as tf  # imported lazily: `nats_to_bits` stays usable without TensorFlow
    return tf


def kl_divergence_diag_normal(mu, sigma):
    """KL(N(mu, diag(sigma^2)) || N(0, I)) per example, summed over the latent axis, in nats.

    Args:
        mu: `[..., z_size]` means.
        sigma: `[..., z_size]` standard deviations (> 0).

    Returns:
        `[...]`: `0.5 * sum(mu^2 + sigma^2 - 1 - 2 log sigma)` over the last axis.
    """
    tf = _tf()
    mu = tf.convert_to_tensor(mu, tf.float32)
    sigma = tf.convert_to_tensor(sigma, tf.float32)
    return 0.5 * tf.reduce_sum(
        tf.square(mu) + tf.square(sigma) - 1.0 - 2.0 * tf.math.log(sigma), axis=-1)


def free_bits_kl_penalty(kl_nats, free_bits):
    """The KL cost left after `free_bits`: `max(KL - free_bits * ln 2, 0)`, in nats.

    The free bits apply to the TOTAL KL of an example (summed over all latent dimensions), not to
    each dimension: with `free_bits = 48` the first 48 bits of the whole code are free. This is
    what Magenta's MusicVAE code computes (its comment speaks of a per-dimension allowance, but
    the threshold is subtracted from the summed KL).

    Args:
        kl_nats: KL divergence per example in nats, any shape (e.g. `[batch]`).
        free_bits: the free allowance in bits (python number or scalar tensor), >= 0.

    Returns:
        A tensor of the shape of `kl_nats`.
    """
    tf = _tf()
    kl_nats = tf.convert_to_tensor(kl_nats, tf.float32)
    return tf.maximum(kl_nats - tf.cast(free_bits, tf.float32) * LN2, 0.0)


def sequence_cross_entropy(targets, logits):
    """Softmax cross-entropy summed over time, per example, in nats.

    Args:
        targets: int `[batch, time]` class ids.
        logits: float `[batch, time, classes]`.

    Returns:
        `[batch]`.
    """
    tf = _tf()
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(targets, tf.int32), logits=logits)
    return tf.reduce_sum(xent, axis=-1)
