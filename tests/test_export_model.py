"""python -m audiogen.cli.export_model: a run's weights without its optimizer state, as a run
directory that generate.py reads like the run itself."""
import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from audiogen.cli import export_model, generate, train
from audiogen.musicvae.attribute_vectors import load
from audiogen.training.export import exported_size
from run_helpers import musicvae_args, run_dir, samplernn_args

pytestmark = pytest.mark.slow


def variable_names(run):
    prefix = tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))
    return [name for name, _ in tf.train.list_variables(prefix)]


@pytest.fixture(scope="module")
def samplernn_run(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("samplernn"))
    assert train.main(samplernn_args(folder, 1)) == 0
    return run_dir(folder)


@pytest.fixture(scope="module")
def musicvae_run(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("musicvae"))
    assert train.main(musicvae_args(folder, 20, 10)) == 0
    return run_dir(folder)


def test_samplernn_export_generates_the_same_audio_from_a_third_of_the_bytes(samplernn_run,
                                                                              tmp_path):
    shipped = str(tmp_path / "models" / "tiny")
    assert export_model.main([samplernn_run, shipped]) == 0
    assert not any("optimizer" in name for name in variable_names(shipped))
    assert any("optimizer" in name for name in variable_names(samplernn_run))
    source_checkpoints = exported_size(os.path.join(samplernn_run, "checkpoints"))
    assert exported_size(shipped) < 0.5 * source_checkpoints
    assert sorted(os.listdir(tmp_path / "models")) == ["tiny"]  # no staging folder left
    clips = []
    for name, run in (("run", samplernn_run), ("shipped", shipped)):
        out = str(tmp_path / f"{name}.wav")
        assert generate.main(["--checkpoint_path", run, "--output_path", out, "--dur", "0.1",
                              "--rng_seed", "3", "--temperature", "1.0"]) == 0
        clips.append(sf.read(out)[0])
    np.testing.assert_array_equal(clips[0], clips[1])


def test_musicvae_export_keeps_the_attribute_vectors_of_its_checkpoint(musicvae_run, tmp_path,
                                                                       capsys):
    shipped = str(tmp_path / "shipped")
    assert export_model.main([musicvae_run, shipped, "--set", "num_workers=2"]) == 0
    assert load(shipped).checkpoint == "checkpoints/ckpt-20"
    np.testing.assert_array_equal(load(shipped).vectors, load(musicvae_run).vectors)
    capsys.readouterr()
    out = str(tmp_path / "melody.mid")
    assert generate.main(["--checkpoint_path", shipped, "--output_path", out, "--num_seqs", "2",
                          "--attribute", "note_density=1", "--rng_seed", "1"]) == 0
    assert "computing" not in capsys.readouterr().out.lower()
    assert os.path.exists(os.path.join(tmp_path, "melody_0.mid"))


def test_refusals_name_the_problem_and_write_nothing(musicvae_run, tmp_path, capsys):
    shipped = str(tmp_path / "shipped")
    assert export_model.main([musicvae_run, shipped, "--set", "z_size=4"]) == 2
    assert "z_size" in capsys.readouterr().err
    assert export_model.main([musicvae_run, shipped, "--set", "no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert export_model.main([str(tmp_path / "missing"), shipped]) == 2
    assert "no checkpoint found" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
    os.makedirs(shipped)
    assert export_model.main([musicvae_run, shipped]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert export_model.main([musicvae_run, shipped, "--overwrite"]) == 0
    assert os.path.exists(os.path.join(shipped, "resolved.config.json"))
