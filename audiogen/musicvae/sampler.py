"""MusicVAE generation on tensors: sample from the prior, interpolate, reconstruct.

Every function returns int32 melodies `[n, seq_len]` (90 classes: 0 = no event, 1 = note-off,
2..89 = pitches 21..108); MIDI conversion lives in `audiogen.midi`. Decoding is one compiled loop
(`MusicVAE.decode`) over all melodies at once, with stateless random ops: the same `rng_seed`
gives the same melodies. A temperature <= 0 decodes greedily (argmax).

`z_shift` (float `[z_size]`, default none) is added to every latent code before decoding: the sum
of attribute vectors times their amounts (`audiogen.musicvae.attribute_vectors`).
"""
import tensorflow as tf


def slerp(p0, p1, t):
    """Spherical linear interpolation between the vectors `p0` and `p1` (shape `[d]`).

    `t` is a scalar or a `[n]` vector of positions in [0, 1]; returns `[d]` or `[n, d]`.
    Moves along the great circle between the directions of `p0` and `p1` (for vectors of equal
    norm the norm stays constant; endpoints are exactly `p0` at t=0 and `p1` at t=1). When the two
    vectors are (anti)parallel or one is zero, the angle is undefined and it falls back to linear
    interpolation.
    """
    p0 = tf.convert_to_tensor(p0, tf.float32)
    p1 = tf.convert_to_tensor(p1, tf.float32)
    t = tf.convert_to_tensor(t, tf.float32)
    scalar = t.shape.rank == 0
    t = tf.reshape(t, [-1, 1])
    n0, n1 = tf.norm(p0), tf.norm(p1)
    cos = tf.reduce_sum(p0 * p1) / tf.maximum(n0 * n1, 1e-12)
    omega = tf.acos(tf.clip_by_value(cos, -1.0, 1.0))
    sin = tf.sin(omega)
    degenerate = (tf.abs(sin) < 1e-6) | (n0 * n1 < 1e-12)
    safe_sin = tf.where(degenerate, 1.0, sin)
    w0 = tf.where(degenerate, 1.0 - t, tf.sin((1.0 - t) * omega) / safe_sin)
    w1 = tf.where(degenerate, t, tf.sin(t * omega) / safe_sin)
    out = w0 * p0[None, :] + w1 * p1[None, :]
    # Make the endpoints exact (sin ratios are not exactly 0 / 1 in float32).
    out = tf.where(tf.equal(t, 0.0), p0[None, :], tf.where(tf.equal(t, 1.0), p1[None, :], out))
    return out[0] if scalar else out


def shifted(z, z_shift):
    """`z` `[n, z_size]` plus `z_shift` `[z_size]` (unchanged when it is None)."""
    if z_shift is None:
        return z
    return z + tf.cast(tf.reshape(z_shift, [1, -1]), z.dtype)


def sample(model, num, temperatures=1.0, rng_seed=0, z_shift=None):
    """`num` melodies decoded from z ~ N(0, I) (plus `z_shift`) -> int32 `[num, seq_len]`.

    `temperatures`: scalar or `[num]` (one per melody).
    """
    seed = tf.constant([rng_seed, 1], tf.int64)
    z = tf.random.stateless_normal([num, model.z_size], seed=seed)
    return model.decode(shifted(z, z_shift), temperature=temperatures, rng_seed=rng_seed)


def interpolate(model, a, b, steps, temperature=1.0, rng_seed=0, return_z=False, z_shift=None):
    """Decode `steps` points on the slerp between the posterior means of melodies `a` and `b`.

    `a`, `b`: int `[seq_len]` (or `[1, seq_len]`). Returns int32 `[steps, seq_len]`, rows 0 and
    `steps - 1` decoded from the two means themselves (the endpoints are included); with
    `return_z` also the `[steps, z_size]` codes decoded (`z_shift` added to every step).
    """
    if steps < 2:
        raise ValueError(f"interpolate needs steps >= 2 (the two endpoints), got {steps}")
    x = tf.stack([tf.reshape(tf.cast(a, tf.int32), [-1]), tf.reshape(tf.cast(b, tf.int32), [-1])])
    mu, _ = model.encode(x)
    z = shifted(slerp(mu[0], mu[1], tf.linspace(0.0, 1.0, steps)), z_shift)
    melodies = model.decode(z, temperature=temperature, rng_seed=rng_seed)
    return (melodies, z) if return_z else melodies


def reconstruct(model, x, temperature=1.0, rng_seed=0, z_shift=None):
    """Encode melodies `x` int `[n, seq_len]` and decode them from their posterior means (plus
    `z_shift`)."""
    mu, _ = model.encode(x)
    return model.decode(shifted(mu, z_shift), temperature=temperature, rng_seed=rng_seed)
