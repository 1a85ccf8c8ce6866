"""MusicVAE's early stopping (config key `early_stopping_patience`, flag
`--early_stopping_patience`): training ends after that many evaluations without a lower
validation loss, says so, and keeps the best checkpoint and the attribute vectors."""
import json
import os
import shutil

import pytest

from audiogen.cli import train
from test_cli_musicvae import DEMO_MIDI, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def midi(tmp_path_factory):
    folder = tmp_path_factory.mktemp("midi")
    for name in sorted(n for n in os.listdir(DEMO_MIDI) if n.endswith(".mid"))[:40]:
        shutil.copy(os.path.join(DEMO_MIDI, name), folder / name)
    return str(folder)


def checkpoints(run_dir, sub="checkpoints"):
    return sorted(int(n[5:-6]) for n in os.listdir(os.path.join(run_dir, sub))
                  if n.startswith("ckpt-") and n.endswith(".index"))


def test_training_stops_after_patience_evaluations_without_improvement(midi, tmp_path, capsys):
    # learning rate 0: the weights never change and the rising KL weight raises the validation
    # loss, so it improves at the first evaluation only.
    config = tiny_config(tmp_path, train_dir=midi, num_steps=60, learning_rate=0.0,
                         early_stopping_patience=2, meters="any",
                         beta_settings={"start_beta": 0.0, "end_beta": 1.0, "duration": 60},
                         free_bits=0.0)
    logdir = str(tmp_path / "logdir")
    assert train.main(["--config_file", config, "--id", "run", "--logdir_root", logdir]) == 0
    run_dir = os.path.join(logdir, "run")
    assert checkpoints(run_dir) == [10, 20, 30]
    assert checkpoints(run_dir, "best") == [10]
    out = capsys.readouterr().out
    assert "Stopped early at step 30: val_loss did not improve" in out
    assert "for 2 evaluations (early_stopping_patience)" in out
    with open(os.path.join(run_dir, "attribute_vectors.json")) as f:
        assert json.load(f)["checkpoint"] == "checkpoints/ckpt-30"


def test_the_flag_overrides_the_config_and_null_never_stops(midi, tmp_path):
    config = tiny_config(tmp_path, train_dir=midi, num_steps=40, learning_rate=0.0,
                         early_stopping_patience=1, meters="any",
                         beta_settings={"start_beta": 0.0, "end_beta": 1.0, "duration": 40},
                         free_bits=0.0)
    logdir = str(tmp_path / "logdir")
    assert train.main(["--config_file", config, "--id", "flag", "--logdir_root", logdir,
                       "--early_stopping_patience", "3"]) == 0
    assert checkpoints(os.path.join(logdir, "flag")) == [10, 20, 30, 40]
    assert train.main(["--config_file", config, "--id", "null", "--logdir_root", logdir,
                       "--set", "early_stopping_patience=null"]) == 0
    assert checkpoints(os.path.join(logdir, "null")) == [10, 20, 30, 40]
    with open(os.path.join(logdir, "null", "resolved.config.json")) as f:
        assert json.load(f)["early_stopping_patience"] is None
