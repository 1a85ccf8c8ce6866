"""Attribute vectors without training: quartiles, the vector maths, the file, the latent shift
(audiogen.musicvae.attribute_vectors, audiogen.musicvae.sampler's z_shift)."""
import json
import os

import numpy as np
import pytest

from audiogen.midi.attributes import ATTRIBUTES
from audiogen.musicvae import MusicVAE
from audiogen.musicvae.attribute_vectors import FILE_NAME, AttributeVectors, \
    attribute_vectors, compute, encode_means, load, quartile_groups, subset
from audiogen.musicvae.sampler import interpolate, reconstruct, sample

T, Z = 32, 8


@pytest.fixture(scope="module")
def model():
    return MusicVAE(seq_len=T, z_size=Z,
                    encoder_params=dict(embed_size=8, hidden_size=16, n_layers=1),
                    decoder_params=dict(embed_size=8, hidden_size=16, n_layers=1))


def melodies(n, seed=0):
    """Random melodies of mostly holds, each with a note-on at step 0."""
    rng = np.random.default_rng(seed)
    classes = np.where(rng.random((n, T)) < 0.3, rng.integers(2, 90, (n, T)), 0)
    classes[:, 0] = rng.integers(2, 90, n)
    return classes.astype(np.int32)


def vectors_of(names=("note_density", "mean_pitch")):
    k = len(names)
    return AttributeVectors(
        names, np.arange(k * Z, dtype=np.float32).reshape(k, Z) / 10,
        bottom_threshold=np.array([2.0, np.nan][:k]), top_threshold=np.array([6.0, 70.5][:k]),
        bottom_mean=np.array([1.5, 60.0][:k]), top_mean=np.array([7.25, 72.0][:k]),
        num_slices=40, checkpoint="checkpoints/ckpt-20")


def test_quartile_groups_rank_with_ties_and_skip_undefined_values():
    values = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, np.nan, 0, 0])   # 11 defined: quarters of 2
    bottom, top = quartile_groups(values, seed=1)
    assert len(bottom) == len(top) == 2
    assert set(top) == {7, 8} and np.all(values[bottom] == 0)
    # Ties are split in a seeded order: the same seed, the same groups; others differ somewhere.
    np.testing.assert_array_equal(quartile_groups(values, seed=1)[0], bottom)
    assert len({tuple(quartile_groups(values, seed=s)[0]) for s in range(8)}) > 1
    assert quartile_groups([1.0, 2.0, 3.0])[0].size == 0


def test_vectors_point_from_the_bottom_to_the_top_quartile():
    rng = np.random.default_rng(0)
    density = rng.uniform(0, 8, 400)
    mu = rng.normal(0, 0.1, (400, Z))
    mu[:, 2] += density                       # the attribute lives along z[2]
    pitch = rng.uniform(50, 80, 400)
    mu[:, 5] -= pitch / 10                    # and this one against z[5]
    vectors = attribute_vectors(mu, {"note_density": density, "mean_pitch": pitch}, "ckpt")
    assert vectors.names == ("note_density", "mean_pitch") and vectors.num_slices == 400
    low, high = np.sort(density)[99], np.sort(density)[300]
    assert vectors.bottom_threshold[0] == low and vectors.top_threshold[0] == high
    assert vectors.bottom_mean[0] == pytest.approx(np.sort(density)[:100].mean())
    assert vectors.top_mean[0] == pytest.approx(np.sort(density)[300:].mean())
    # v = mean mu(top) - mean mu(bottom): about 6 along z[2], about -2.25 along z[5].
    v = vectors.vectors
    assert v.dtype == np.float32 and v.shape == (2, Z)
    assert v[0, 2] == pytest.approx(vectors.top_mean[0] - vectors.bottom_mean[0], abs=0.05)
    assert np.argmax(np.abs(v[0])) == 2 and np.argmax(np.abs(v[1])) == 5 and v[1, 5] < -2
    with pytest.raises(ValueError, match="at least 4 slices with a defined mean_pitch"):
        attribute_vectors(mu[:5], {"mean_pitch": [60, np.nan, np.nan, np.nan, 61]}, "ckpt")


def test_shift_sums_amounts_times_vectors_and_names_valid_attributes():
    vectors = vectors_of()
    np.testing.assert_allclose(vectors.shift([("note_density", 1.5)]), 1.5 * vectors.vectors[0])
    both = vectors.shift({"note_density": -1.0, "mean_pitch": 2.0})
    np.testing.assert_allclose(both, 2 * vectors.vectors[1] - vectors.vectors[0], rtol=1e-6)
    assert vectors.shift([]).shape == (Z,) and not vectors.shift([]).any()
    with pytest.raises(ValueError, match=r"'loudness'; valid attributes: note_density, "
                                         r"mean_pitch"):
        vectors.shift([("loudness", 1.0)])
    assert "top quartile 7.25 (from 6) onsets per 16 steps" in vectors.describe("note_density")


def test_file_round_trip_is_atomic_and_bad_files_are_named(tmp_path):
    assert load(str(tmp_path)) is None
    vectors = vectors_of()
    path = vectors.save(str(tmp_path))
    assert os.listdir(tmp_path) == [FILE_NAME] and path == str(tmp_path / FILE_NAME)
    data = json.loads((tmp_path / FILE_NAME).read_text())
    assert data["checkpoint"] == "checkpoints/ckpt-20" and data["num_slices"] == 40
    assert data["attributes"]["mean_pitch"]["bottom_threshold"] is None    # NaN: JSON null
    back = load(str(tmp_path))
    assert back.names == vectors.names and back.checkpoint == vectors.checkpoint
    np.testing.assert_array_equal(back.vectors, vectors.vectors)
    np.testing.assert_array_equal(back.top_mean, vectors.top_mean)
    assert np.isnan(back.bottom_threshold[1])

    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=f"{FILE_NAME}: cannot read attribute vectors"):
        load(str(tmp_path))
    data["attributes"]["note_density"]["vector"] = [1.0, 2.0]
    (tmp_path / FILE_NAME).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{FILE_NAME}: every 'vector' must hold z_size=8"):
        load(str(tmp_path))
    data["attributes"]["note_density"]["vector"] = [0.0] * Z
    del data["num_slices"]
    (tmp_path / FILE_NAME).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{FILE_NAME}: not an attribute vector file.*num_slices"):
        load(str(tmp_path))


def test_compute_encodes_in_batches_every_attribute(model):
    slices = melodies(50)
    mu_batched = encode_means(model, slices, batch_size=16)
    mu_whole = np.asarray(model.encode(slices)[0])
    np.testing.assert_allclose(mu_batched, mu_whole, atol=1e-5)
    vectors = compute(model, slices, "checkpoints/ckpt-1", max_slices=40, batch_size=16)
    assert vectors.names == tuple(ATTRIBUTES) and vectors.vectors.shape == (len(ATTRIBUTES), Z)
    assert vectors.num_slices == 40 and np.all(np.isfinite(vectors.vectors))
    assert len(subset(slices, 40)) == 40 and subset(slices, None) is slices
    with pytest.raises(ValueError, match="at least 4 slices"):
        compute(model, slices[:3], "ckpt")


def test_sampler_adds_the_shift_to_every_latent_code(model):
    shift = np.linspace(-3, 3, Z).astype(np.float32)
    z = np.asarray(model.encode(melodies(2, seed=5))[0])
    expected = np.asarray(model.decode(z + shift, temperature=0.0, rng_seed=3))
    got = np.asarray(reconstruct(model, melodies(2, seed=5), temperature=0.0, rng_seed=3,
                                 z_shift=shift))
    np.testing.assert_array_equal(got, expected)
    _, path = interpolate(model, melodies(2)[0], melodies(2)[1], 3, temperature=0.0,
                          return_z=True, z_shift=shift)
    _, plain = interpolate(model, melodies(2)[0], melodies(2)[1], 3, temperature=0.0,
                           return_z=True)
    np.testing.assert_allclose(np.asarray(path) - np.asarray(plain),
                               np.broadcast_to(shift, (3, Z)), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(sample(model, 4, 0.0, rng_seed=2, z_shift=None)),
                                  np.asarray(sample(model, 4, 0.0, rng_seed=2)))
