import numpy as np
import pytest

from audiogen.musicvae import MusicVAE, interpolate, reconstruct, sample, slerp

T, Z = 32, 8


@pytest.fixture(scope="module")
def model():
    return MusicVAE(seq_len=T, z_size=Z, use_hier=True, n_subsequences=2, c_size=8,
                    encoder_params=dict(embed_size=8, hidden_size=16, n_layers=1),
                    decoder_params=dict(embed_size=8, hidden_size=16, n_layers=1),
                    conductor_params=dict(hidden_size=16, n_layers=1))


def melodies(n, seed=0):
    return np.random.RandomState(seed).randint(0, 90, size=(n, T)).astype("int32")


# --- slerp --------------------------------------------------------------------------------------

def test_slerp_endpoints():
    p0, p1 = np.array([1.0, 2.0, -1.0]), np.array([0.5, -3.0, 2.0])
    np.testing.assert_allclose(slerp(p0, p1, 0.0).numpy(), p0, rtol=1e-6)
    np.testing.assert_allclose(slerp(p0, p1, 1.0).numpy(), p1, rtol=1e-6)
    path = slerp(p0, p1, np.linspace(0, 1, 5)).numpy()
    assert path.shape == (5, 3)
    np.testing.assert_allclose(path[0], p0, rtol=1e-6)
    np.testing.assert_allclose(path[-1], p1, rtol=1e-6)


def test_slerp_keeps_the_norm_of_equal_norm_vectors():
    rng = np.random.default_rng(0)
    p0, p1 = rng.standard_normal(16), rng.standard_normal(16)
    p0, p1 = 3 * p0 / np.linalg.norm(p0), 3 * p1 / np.linalg.norm(p1)
    path = slerp(p0, p1, np.linspace(0, 1, 11)).numpy()
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0, rtol=1e-5)
    # Linear interpolation would shrink the midpoint.
    assert np.linalg.norm((p0 + p1) / 2) < 2.9


def test_slerp_orthogonal_unit_vectors():
    mid = slerp([1.0, 0.0], [0.0, 1.0], 0.5).numpy()
    np.testing.assert_allclose(mid, [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)
    third = slerp([1.0, 0.0], [0.0, 1.0], 1 / 3).numpy()
    np.testing.assert_allclose(third, [np.cos(np.pi / 6), np.sin(np.pi / 6)], rtol=1e-5)


def test_slerp_parallel_vectors_fall_back_to_lerp():
    p0, p1 = np.array([1.0, 1.0]), np.array([3.0, 3.0])
    t = np.array([0.0, 0.25, 0.5, 1.0])
    expected = (1 - t)[:, None] * p0 + t[:, None] * p1
    out = slerp(p0, p1, t).numpy()
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    np.testing.assert_allclose(slerp(np.zeros(2), p1, 0.5).numpy(), p1 / 2, rtol=1e-6)


# --- sampling -------------------------------------------------------------------------------------

def test_sample_shapes_and_determinism(model):
    a = sample(model, 3, temperatures=1.0, rng_seed=4).numpy()
    assert a.shape == (3, T) and a.dtype == np.int32
    assert a.min() >= 0 and a.max() < 90
    np.testing.assert_array_equal(sample(model, 3, 1.0, rng_seed=4).numpy(), a)
    per_melody = sample(model, 3, temperatures=[0.5, 1.0, 0.0], rng_seed=4).numpy()
    assert per_melody.shape == (3, T)
    np.testing.assert_array_equal(per_melody[1], a[1])


def test_interpolate_includes_the_endpoints(model):
    x = melodies(2)
    out, z = interpolate(model, x[0], x[1], steps=5, temperature=0.0, return_z=True)
    assert out.shape == (5, T) and z.shape == (5, Z)
    mu, _ = model.encode(x)
    np.testing.assert_allclose(z[0].numpy(), mu[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(z[-1].numpy(), mu[1].numpy(), rtol=1e-6)
    # Greedy decoding: the end rows are the reconstructions of the two melodies.
    np.testing.assert_array_equal(out.numpy()[[0, -1]], reconstruct(model, x, 0.0).numpy())
    with pytest.raises(ValueError, match="steps"):
        interpolate(model, x[0], x[1], steps=1)


def test_reconstruct_shapes(model):
    x = melodies(4, seed=1)
    out = reconstruct(model, x, temperature=1.0, rng_seed=2).numpy()
    assert out.shape == (4, T) and out.dtype == np.int32
    np.testing.assert_array_equal(reconstruct(model, x, 1.0, rng_seed=2).numpy(), out)
    mu, _ = model.encode(x)
    np.testing.assert_array_equal(model.decode(mu, 1.0, rng_seed=2).numpy(), out)
