import math

import numpy as np
import pytest
import tensorflow as tf

from audiogen.schedules import beta_schedule, sampling_probability


@pytest.mark.parametrize("step,expected", [(0, 0.0), (500, 0.1), (1000, 0.2), (5000, 0.2)])
def test_beta_linear_then_constant(step, expected):
    assert beta_schedule(step, 0.0, 0.2, 1000) == pytest.approx(expected)
    assert float(beta_schedule(tf.constant(step, tf.int64), 0.0, 0.2, 1000)) == \
        pytest.approx(expected)


def test_beta_decreasing_and_zero_duration():
    assert beta_schedule(250, 1.0, 0.0, 1000) == pytest.approx(0.75)
    assert beta_schedule(0, 0.0, 0.2, 0) == pytest.approx(0.2)
    assert float(beta_schedule(tf.constant(0), 0.0, 0.2, 0)) == pytest.approx(0.2)


def test_beta_inside_tf_function_with_variable_step():
    step = tf.Variable(0, dtype=tf.int64)
    f = tf.function(lambda: beta_schedule(step, 0.0, 0.2, 20000))
    assert float(f()) == 0.0
    step.assign(10000)
    assert float(f()) == pytest.approx(0.1)
    step.assign(10 ** 9)
    assert float(f()) == pytest.approx(0.2)


def test_constant_sampling_probability():
    assert sampling_probability(0, "constant", 0.0) == 0.0
    assert sampling_probability(12345, "constant", 0.25) == 0.25
    assert float(sampling_probability(tf.constant(7, tf.int64), "constant", 0.25)) == 0.25


@pytest.mark.parametrize("step", [0, 100, 1000, 2000, 5000])
def test_inverse_sigmoid_matches_definition(step):
    k = 1000.0
    teacher_forcing = k / (k + math.exp(step / k))
    assert sampling_probability(step, "inverse_sigmoid", k) == pytest.approx(1 - teacher_forcing)
    assert float(sampling_probability(tf.constant(step), "inverse_sigmoid", k)) == \
        pytest.approx(1 - teacher_forcing, rel=1e-5)


def test_inverse_sigmoid_edges():
    k = 2000.0
    assert sampling_probability(0, "inverse_sigmoid", k) == pytest.approx(1 / (k + 1))
    # Rises monotonically to 1 without overflowing exp.
    values = [sampling_probability(s, "inverse_sigmoid", k) for s in range(0, 100001, 5000)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert sampling_probability(10 ** 7, "inverse_sigmoid", k) == pytest.approx(1.0)
    assert float(sampling_probability(tf.constant(10 ** 7), "inverse_sigmoid", k)) == \
        pytest.approx(1.0)


def test_sampling_probability_in_tf_function():
    step = tf.Variable(0, dtype=tf.int64)
    f = tf.function(lambda: sampling_probability(step, "inverse_sigmoid", 10.0))
    np.testing.assert_allclose(float(f()), 1 / 11, rtol=1e-6)
    step.assign(30)
    np.testing.assert_allclose(float(f()), 1 - 10 / (10 + math.exp(3)), rtol=1e-6)


def test_bad_schedule():
    with pytest.raises(ValueError, match="constant"):
        sampling_probability(0, "linear", 1.0)
    with pytest.raises(ValueError, match=">= 1"):
        sampling_probability(0, "inverse_sigmoid", 0.5)
