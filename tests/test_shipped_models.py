"""The models shipped in models/: weights only, small, and they make music rather than silence.

What they generate is checked loosely (the shipped weights change when a model is retrained):
unprimed SampleRNN audio is sound (silence generated at its level is ~0.0003 RMS), sampled
melodies have notes, and the MusicVAE reconstructs demo tunes far better than the always-hold
floor.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from audiogen.audio.quantize import dequantize
from audiogen.midi.attributes import note_density
from audiogen.midi.encoding import NO_EVENT
from audiogen.midi.files import first_melody_slice
from audiogen.musicvae.sampler import reconstruct, sample
from audiogen.samplernn.sampler import generate
from audiogen.training.export import exported_size
from audiogen.training.trained import load_trained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
SAMPLERNN = os.path.join(MODELS, "samplernn-bach-piano")
MUSICVAE = os.path.join(MODELS, "musicvae-folk-2bar")
DEMO_TUNES = os.path.join(ROOT, "data", "demo", "midi", "oneills")


def test_models_are_weights_only_and_small_together():
    for run in (SAMPLERNN, MUSICVAE):
        for name in ("resolved.config.json", "training.json", "README.md"):
            assert os.path.exists(os.path.join(run, name)), f"{run} has no {name}"
        prefix = tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))
        assert prefix, f"{run} has no checkpoint"
        assert not any("optimizer" in n for n, _ in tf.train.list_variables(prefix))
    assert exported_size(MODELS) < 40 * 2**20


def test_samplernn_from_silence_is_audible():
    trained = load_trained(SAMPLERNN)
    rate = trained.training_args["sample_rate"]
    levels = generate(trained.model, num_samples=rate, temperatures=[1.0, 1.0], rng_seed=0)
    audio = dequantize(levels, trained.config["q_type"], trained.config["q_levels"]).numpy()
    rms = np.sqrt(np.mean(audio ** 2, axis=1))
    assert np.all(rms > 0.02), f"RMS of the first generated second: {rms}"


@pytest.fixture(scope="module")
def musicvae():
    return load_trained(MUSICVAE)


def test_musicvae_samples_have_notes(musicvae):
    melodies = sample(musicvae.model, 8, temperatures=0.5, rng_seed=1).numpy()
    density = note_density(melodies)
    assert np.all(density >= 1), f"onsets per 16 steps of each sampled melody: {density}"


def test_musicvae_reconstructs_demo_tunes(musicvae):
    steps = musicvae.config["slice_bar"] * 16
    names = sorted(n for n in os.listdir(DEMO_TUNES) if n.endswith(".mid"))[:40]
    tunes = np.stack([first_melody_slice(os.path.join(DEMO_TUNES, n), steps,
                                         musicvae.config["meters"])[0] for n in names])
    decoded = reconstruct(musicvae.model, tunes, temperature=0.0).numpy()
    accuracy = float(np.mean(decoded == tunes))
    always_hold = float(np.mean(tunes == NO_EVENT))
    assert accuracy > always_hold + 0.2, (accuracy, always_hold)
