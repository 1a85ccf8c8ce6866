import math

import numpy as np
import pytest
import tensorflow as tf

from audiogen.losses import (
    LN2, free_bits_kl_penalty, kl_divergence_diag_normal, nats_to_bits, sequence_cross_entropy)


def test_nats_to_bits():
    assert nats_to_bits(LN2) == pytest.approx(1.0)
    assert nats_to_bits(0.0) == 0.0


def test_kl_is_zero_for_standard_normal():
    kl = kl_divergence_diag_normal(np.zeros([3, 5]), np.ones([3, 5]))
    assert kl.shape == (3,)
    np.testing.assert_allclose(kl.numpy(), 0.0, atol=1e-7)


def test_kl_known_values_per_example_summed_over_z():
    mu = np.array([[1.0, 2.0], [0.0, 0.0]], np.float32)
    sigma = np.array([[1.0, 1.0], [0.5, 2.0]], np.float32)
    expected_1 = 0.5 * (1 + 4)                      # mean part only
    expected_2 = 0.5 * ((0.25 - 1 - 2 * math.log(0.5)) + (4 - 1 - 2 * math.log(2.0)))
    np.testing.assert_allclose(kl_divergence_diag_normal(mu, sigma).numpy(),
                               [expected_1, expected_2], rtol=1e-6)


def test_kl_matches_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mu, sigma = np.array([0.3, -0.7]), np.array([0.6, 1.4])
    z = mu + sigma * rng.standard_normal((200000, 2))
    log_q = -0.5 * (((z - mu) / sigma) ** 2 + np.log(2 * np.pi * sigma ** 2))
    log_p = -0.5 * (z ** 2 + np.log(2 * np.pi))
    estimate = np.mean(np.sum(log_q - log_p, axis=1))
    assert float(kl_divergence_diag_normal(mu, sigma)) == pytest.approx(estimate, abs=0.01)


def test_free_bits_threshold_applies_to_total_kl():
    free_bits = 48.0
    threshold = free_bits * math.log(2.0)  # nats
    kl = np.array([0.0, threshold - 1.0, threshold, threshold + 2.5], np.float32)
    np.testing.assert_allclose(free_bits_kl_penalty(kl, free_bits).numpy(),
                               [0.0, 0.0, 0.0, 2.5], atol=1e-5)
    # Total, not per dimension: 256 dims of 0.2 bits each (51.2 bits in total) exceed 48 free bits.
    per_dim = np.full([1, 256], 0.2 * LN2)
    sigma = np.ones([1, 256], np.float32)
    mu = np.sqrt(2 * per_dim).astype(np.float32)  # KL of each dim = mu^2 / 2 = 0.2 bits
    kl_total = kl_divergence_diag_normal(mu, sigma)
    np.testing.assert_allclose(free_bits_kl_penalty(kl_total, free_bits).numpy(),
                               [(51.2 - 48.0) * LN2], rtol=1e-4)


def test_free_bits_zero_is_plain_kl_and_works_in_tf_function():
    @tf.function
    def f(kl, bits):
        return free_bits_kl_penalty(kl, bits)
    np.testing.assert_allclose(f(tf.constant([1.5, 3.0]), tf.constant(0.0)).numpy(), [1.5, 3.0])
    np.testing.assert_allclose(f(tf.constant([1.0, 3.0]), tf.constant(2.0)).numpy(),
                               [0.0, 3.0 - 2 * LN2], rtol=1e-6)


def test_sequence_cross_entropy_sums_over_time():
    logits = tf.zeros([2, 7, 90])
    targets = tf.zeros([2, 7], tf.int32)
    np.testing.assert_allclose(sequence_cross_entropy(targets, logits).numpy(),
                               [7 * math.log(90)] * 2, rtol=1e-6)
    sharp = tf.one_hot(tf.constant([[3, 4]]), 90) * 100.0
    np.testing.assert_allclose(sequence_cross_entropy([[3, 4]], sharp).numpy(), [0.0], atol=1e-5)
