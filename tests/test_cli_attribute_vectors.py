"""Attribute vectors of a trained tiny MusicVAE: stored by training, moving what the decoder
writes, applied by generate.py --attribute, recomputed by python -m audiogen.cli.attribute_vectors.

One run is trained per module (about 12 s): 300 steps over 60 demo tunes, with free bits high
enough that the latent code is used (over 8 initial seeds, the note density of decoded prior
samples moved by at least 0.95 onsets per 16 steps from a = -2 to 0 and 1.7 from 0 to +2).
"""
import json
import os
import shutil

import keras
import numpy as np
import pretty_midi
import pytest
import tensorflow as tf

from audiogen.cli import attribute_vectors as command
from audiogen.cli import generate, train
from audiogen.midi.attributes import ATTRIBUTES, note_density
from audiogen.musicvae.attribute_vectors import DEFAULT_MAX_SLICES, FILE_NAME, load
from audiogen.training.attribute_vectors import training_slices
from audiogen.training.trained import load_trained
from run_helpers import DEMO_MIDI, ROOT, midi_corpus

pytestmark = pytest.mark.slow
FOUR_FOUR = ["0001-005017.mid", "0001-005027.mid"]
SAMPLERNN_CONFIG = os.path.join(ROOT, "configs", "samplernn-tiny.config.json")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`(run_dir, config)` of the tiny run, trained with fixed seeds."""
    folder = tmp_path_factory.mktemp("attributes")
    config = {
        "model": "musicvae", "batch_size": 16, "num_workers": 1, "slice_bar": 2,
        "train_dir": midi_corpus(str(folder / "midi"), 60), "eval_dir": None,
        "eval_fraction": 0.0, "max_slices_per_file": 8, "z_size": 8,
        "encoder_params": {"embed_size": 8, "hidden_size": 32, "n_layers": 1},
        "decoder_params": {"embed_size": 8, "hidden_size": 32, "n_layers": 1},
        "num_steps": 300, "evaluate_interval": 100, "advanced_interval": 1000,
        "print_interval": 100, "learning_rate": 0.01, "free_bits": 16.0,
        "beta_settings": {"start_beta": 0.0, "end_beta": 0.02, "duration": 100},
        "sampling_settings": {"schedule": "constant", "rate": 0.0},
    }
    path = folder / "tiny.config.json"
    path.write_text(json.dumps(config))
    keras.utils.set_random_seed(0)
    assert train.main(["--config_file", str(path), "--id", "run",
                       "--logdir_root", str(folder / "logdir")]) == 0
    return str(folder / "logdir" / "run"), config


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the trained run that a test may change."""
    copy = str(tmp_path / "run")
    shutil.copytree(trained[0], copy)
    return copy


def mean_densities(model, vector, amounts, num=128):
    """Mean note density of greedy decodings of `num` fixed prior samples `z + a * vector`."""
    z = tf.random.stateless_normal([num, model.z_size], seed=[7, 1])
    return [float(note_density(np.asarray(model.decode(z + a * vector, temperature=0.0))).mean())
            for a in amounts]


def rises(values, margin):
    return all(b > a + margin for a, b in zip(values, values[1:]))


def notes_in(paths):
    return sum(len(i.notes) for p in paths for i in pretty_midi.PrettyMIDI(p).instruments)


def test_training_stores_the_vectors_of_its_final_checkpoint(trained):
    run_dir, config = trained
    vectors = load(run_dir)
    assert vectors.checkpoint == "checkpoints/ckpt-300"
    assert vectors.names == tuple(ATTRIBUTES) and vectors.z_size == 8
    assert vectors.num_slices == len(training_slices(config)) > 100
    assert np.all(vectors.top_mean >= vectors.bottom_mean)
    assert np.all(vectors.top_threshold >= vectors.bottom_threshold)
    assert not [n for n in os.listdir(run_dir) if n.startswith(".tmp")]


def test_adding_the_note_density_vector_raises_note_density(trained):
    run_dir, _ = trained
    model = load_trained(run_dir).model
    vector = load(run_dir).vectors[0]
    densities = mean_densities(model, vector, (-2.0, 0.0, 2.0))
    assert rises(densities, 0.5), densities
    assert densities[2] > densities[0] + 2.0, densities
    # The check can fail: the vector turned around lowers the density.
    assert not rises(mean_densities(model, -vector, (-2.0, 0.0, 2.0)), 0.5)


def test_generate_sample_with_attribute(trained, tmp_path, capsys):
    run_dir, _ = trained
    counts = {}
    for amount in ("-2", "+2"):
        out = str(tmp_path / f"d{amount}.mid")
        assert generate.main(["--checkpoint_path", run_dir, "--output_path", out,
                              "--num_seqs", "16", "--temperature", "0.1", "--rng_seed", "3",
                              f"--attribute=note_density={amount}"]) == 0
        counts[amount] = notes_in([str(tmp_path / f"d{amount}_{i}.mid") for i in range(16)])
    printed = capsys.readouterr().out
    assert "Adding attribute vectors to every latent code" in printed
    assert "note_density +2: bottom quartile" in printed and "onsets per 16 steps" in printed
    assert "computing" not in printed      # the stored vectors are used
    assert counts["+2"] > 1.5 * counts["-2"], counts


def test_generate_interpolate_and_reconstruct_with_attributes(trained, tmp_path, capsys):
    run_dir, _ = trained
    a, b = (os.path.join(DEMO_MIDI, n) for n in FOUR_FOUR)
    assert generate.main(["--checkpoint_path", run_dir, "--output_path",
                          str(tmp_path / "i.mid"), "--interpolate", a, b, "--steps", "3",
                          "--rng_seed", "1", "--attribute", "note_density=1",
                          "--attribute", "mean_pitch=-0.5"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["i_0.mid", "i_1.mid", "i_2.mid", "i_all.mid"]
    printed = capsys.readouterr().out
    assert "note_density +1:" in printed and "mean_pitch -0.5:" in printed
    counts = {}
    for amount in ("-2", "2"):
        out = str(tmp_path / f"r{amount}.mid")
        assert generate.main(["--checkpoint_path", run_dir, "--output_path", out,
                              "--reconstruct", a, "--temperature", "0.1", "--rng_seed", "1",
                              "--attribute", f"note_density={amount}"]) == 0
        counts[amount] = notes_in([out])
    assert counts["2"] > counts["-2"], counts


@pytest.mark.parametrize("value, message", [
    ("loudness=1", "unknown attribute 'loudness' in 'loudness=1'; valid attributes: "
                   "note_density, pitch_range, mean_pitch, syncopation, rest_fraction"),
    ("note_density", "expected NAME=AMOUNT such as note_density=+1.5, got 'note_density'"),
    ("note_density=lots", "the AMOUNT of 'note_density=lots' must be a finite number"),
    ("note_density=nan", "the AMOUNT of 'note_density=nan' must be a finite number"),
])
def test_bad_attribute_values_are_refused(tmp_path, capsys, value, message):
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--checkpoint_path", str(tmp_path), "--output_path",
                       str(tmp_path / "x.mid"), "--attribute", value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_attribute_errors_for_samplernn_and_repeats(trained, tmp_path, capsys):
    run_dir, _ = trained
    out = str(tmp_path / "x.wav")
    assert generate.main(["--checkpoint_path", run_dir, "--output_path", out,
                          "--config_file", SAMPLERNN_CONFIG,
                          "--attribute", "note_density=1"]) == 2
    assert "--attribute applies to MusicVAE runs" in capsys.readouterr().err
    assert generate.main(["--checkpoint_path", run_dir, "--output_path", out,
                          "--attribute", "note_density=1", "--attribute", "note_density=2"]) == 2
    assert "--attribute note_density is given twice" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_generate_computes_missing_vectors_and_those_of_another_checkpoint(
        trained, run_copy, tmp_path, capsys):
    os.remove(os.path.join(run_copy, FILE_NAME))
    out = str(tmp_path / "out" / "s.mid")
    assert generate.main(["--checkpoint_path", run_copy, "--output_path", out, "--rng_seed", "1",
                          "--attribute", "pitch_range=1"]) == 0
    printed = capsys.readouterr().out
    assert f"has no {FILE_NAME} yet: computing the attribute vectors now" in printed
    assert "Computing attribute vectors with checkpoints/ckpt-300 from" in printed
    again, original = load(run_copy), load(trained[0])
    assert again.checkpoint == original.checkpoint and again.num_slices == original.num_slices
    np.testing.assert_allclose(again.vectors, original.vectors, atol=1e-5)
    np.testing.assert_array_equal(again.top_threshold, original.top_threshold)

    older = os.path.join(run_copy, "checkpoints", "ckpt-200")
    assert generate.main(["--checkpoint_path", older, "--output_path", out, "--rng_seed", "1",
                          "--attribute", "pitch_range=1"]) == 0
    assert "holds the vectors of checkpoints/ckpt-300: computing those of " \
           "checkpoints/ckpt-200 now" in capsys.readouterr().out
    assert load(run_copy).checkpoint == "checkpoints/ckpt-200"


def test_module_command_recomputes_and_refuses_bad_runs(trained, run_copy, tmp_path, capsys):
    before = open(os.path.join(run_copy, FILE_NAME)).read()
    assert command.main([run_copy, "--max_slices", "40"]) == 0
    printed = capsys.readouterr().out
    assert "from 40 of the" in printed and "  syncopation: bottom quartile" in printed
    vectors = load(run_copy)
    assert vectors.num_slices == 40 and vectors.checkpoint == "checkpoints/ckpt-300"

    written = open(os.path.join(run_copy, FILE_NAME)).read()
    config = json.loads(open(os.path.join(run_copy, "resolved.config.json")).read())
    config["train_dir"] = str(tmp_path / "gone")
    moved = tmp_path / "moved.config.json"
    moved.write_text(json.dumps(config))
    assert command.main([run_copy, "--config_file", str(moved)]) == 2
    assert f"its train_dir {tmp_path / 'gone'} is not a folder here" in capsys.readouterr().err
    assert command.main([run_copy, "--config_file", SAMPLERNN_CONFIG]) == 2
    assert "is a samplernn run: attribute vectors are for MusicVAE runs" in \
        capsys.readouterr().err
    assert command.main([run_copy, "--max_slices", "3"]) == 2
    assert "--max_slices must be at least 4" in capsys.readouterr().err
    assert open(os.path.join(run_copy, FILE_NAME)).read() == written != before
    assert f"default: {DEFAULT_MAX_SLICES})" in command.build_parser().format_help()
