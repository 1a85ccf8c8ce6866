"""What a training or generation run must never do: train on after a non-finite loss, save
non-finite weights, replace an earlier output silently, or write outside its folders."""
import os

import numpy as np
import pytest
import tensorflow as tf

from audiogen.cli import generate, train
from audiogen.files import safe_name, unused_paths
from run_helpers import (checkpoint_numbers, latest_checkpoint, musicvae_args, run_dir,
                         samplernn_args)

pytestmark = pytest.mark.slow


def test_unused_paths_and_safe_names(tmp_path):
    one, two = str(tmp_path / "out.wav"), [str(tmp_path / f"out_{i}.wav") for i in range(2)]
    assert unused_paths([one]) == [one]
    open(one, "w").close()
    assert unused_paths([one]) == [str(tmp_path / "out-1.wav")]
    open(two[0], "w").close()
    assert unused_paths(two) == [str(tmp_path / f"out-1_{i}.wav") for i in range(2)]
    assert safe_name("run-2.b", "--id") == "run-2.b"
    for bad in ("", ".", "..", "../escape", "a/b", "a\\b", "/abs"):
        with pytest.raises(ValueError, match="plain name"):
            safe_name(bad, "--id")


@pytest.mark.parametrize("run_id", ["../../escape", "/tmp/abs", "a/b", ".."])
def test_an_id_that_leaves_the_log_root_is_refused(tmp_path, capsys, run_id):
    args = samplernn_args(str(tmp_path / "inner"), 1)
    args[args.index("--id") + 1] = run_id
    assert train.main(args) == 2
    assert "--id" in capsys.readouterr().err
    written = {os.path.relpath(os.path.join(d, f), tmp_path)
               for d, _, files in os.walk(tmp_path) for f in files}
    assert all(w.startswith(os.path.join("inner", "audio")) or w.endswith("tiny.config.json")
               for w in written), written


def weights_finite(checkpoint):
    """Every saved float but `best` (the best monitored value, infinite before the first) is
    finite."""
    reader = tf.train.load_checkpoint(checkpoint)
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if name.startswith("best/"):
            continue
        if dtype.is_floating and not np.all(np.isfinite(reader.get_tensor(name))):
            return False
    return True


@pytest.mark.parametrize("kind", ["samplernn", "musicvae"])
def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, capsys,
                                                                              kind):
    folder = str(tmp_path)
    if kind == "samplernn":
        assert train.main(samplernn_args(folder, 1, "--generate", "false")) == 0
        blow_up = samplernn_args(folder, 3, "--generate", "false", "--optimizer", "sgd",
                                 "--learning_rate", "1e38")
    else:
        assert train.main(musicvae_args(folder, 10, 10)) == 0
        blow_up = musicvae_args(folder, 30, 10, "--learning_rate", "1e38",
                                "--max_grad_norm", "1e38")
    good = latest_checkpoint(folder)
    capsys.readouterr()
    assert train.main(blow_up) == 1
    err = capsys.readouterr().err
    assert "the training loss became nan" in err or "the training loss became inf" in err, err
    assert "at step" in err
    assert latest_checkpoint(folder) == good and weights_finite(good)
    assert not os.path.exists(os.path.join(run_dir(folder), "interrupted"))


def test_generate_never_replaces_an_earlier_output_unless_told(tmp_path, capsys):
    folder = str(tmp_path)
    assert train.main(musicvae_args(folder, 10, 10)) == 0
    out = str(tmp_path / "new" / "folder" / "mel.mid")   # a folder that does not exist yet
    base = ["--checkpoint_path", run_dir(folder), "--output_path", out, "--rng_seed", "1"]
    assert generate.main(base) == 0
    first = open(out, "rb").read()
    assert generate.main(base + ["--rng_seed", "2"]) == 0
    assert "exists: writing" in capsys.readouterr().out
    assert open(out, "rb").read() == first
    assert os.path.exists(str(tmp_path / "new" / "folder" / "mel-1.mid"))
    assert generate.main(base + ["--rng_seed", "2", "--overwrite"]) == 0
    assert open(out, "rb").read() == open(str(tmp_path / "new" / "folder" / "mel-1.mid"),
                                          "rb").read()
    assert checkpoint_numbers(folder) == [10]
