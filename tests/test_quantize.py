import numpy as np
import pytest

from audiogen.audio.quantize import dequantize, num_levels, quantize, silence_level

LINEAR_LEVELS = (2, 3, 16, 255, 256, 1024, 65537)


def test_mu_law_round_trip_is_exact_for_every_level():
    levels = np.arange(256)
    assert np.array_equal(quantize(dequantize(levels, "mu-law"), "mu-law").numpy(), levels)


@pytest.mark.parametrize("q_levels", LINEAR_LEVELS)
def test_linear_round_trip_is_exact_for_every_level(q_levels):
    levels = np.arange(q_levels)
    samples = dequantize(levels, "linear", q_levels)
    assert np.array_equal(quantize(samples, "linear", q_levels).numpy(), levels)


@pytest.mark.parametrize("q_type,q_levels", [("mu-law", 256)] + [("linear", n) for n in (3, 256)])
def test_quantize_is_monotonic_and_uses_every_level(q_type, q_levels):
    x = np.linspace(-1.0, 1.0, 200001, dtype=np.float32)
    q = quantize(x, q_type, q_levels).numpy()
    assert np.all(np.diff(q) >= 0)
    assert np.array_equal(np.unique(q), np.arange(q_levels))
    assert np.all(np.diff(dequantize(np.arange(q_levels), q_type, q_levels).numpy()) > 0)


def test_linear_dequantize_quantize_gives_the_nearest_level():
    q_levels = 16
    x = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    grid = dequantize(np.arange(q_levels), "linear", q_levels).numpy()
    nearest = grid[np.argmin(np.abs(x[:, None] - grid[None, :]), axis=1)]
    np.testing.assert_allclose(dequantize(quantize(x, "linear", q_levels), "linear",
                                          q_levels).numpy(), nearest, atol=1e-6)


def test_mu_law_quantizes_to_the_nearest_level_in_the_companded_domain():
    mu = 255.0
    x = np.random.default_rng(1).uniform(-1, 1, 1000)
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    grid = np.linspace(-1, 1, 256)
    expected = np.argmin(np.abs(companded[:, None] - grid[None, :]), axis=1)
    assert np.array_equal(quantize(x.astype(np.float32), "mu-law").numpy(), expected)


@pytest.mark.parametrize("q_type,q_levels", [("mu-law", 256), ("linear", 2), ("linear", 256)])
def test_out_of_range_samples_clip_to_the_end_levels(q_type, q_levels):
    q = quantize(np.array([-7.0, -1.0, 1.0, 3.5], np.float32), q_type, q_levels).numpy()
    assert q.tolist() == [0, 0, q_levels - 1, q_levels - 1]
    assert q.dtype == np.int32


def test_silence_level():
    assert silence_level("mu-law") == 128
    assert silence_level("linear", 256) == 128
    assert silence_level("linear", 3) == 1
    assert float(dequantize(silence_level("linear", 3), "linear", 3)) == 0.0
    assert abs(float(dequantize(silence_level("mu-law"), "mu-law"))) < 1e-3


def test_mu_law_always_uses_256_levels_and_bad_type_is_rejected():
    assert num_levels("mu-law", 16) == 256
    assert int(quantize(1.0, "mu-law", 16)) == 255
    with pytest.raises(ValueError, match="q_type must be one of"):
        quantize(0.0, "alaw")
