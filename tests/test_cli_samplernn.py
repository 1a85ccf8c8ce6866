"""End to end: train.py and generate.py on a tiny SampleRNN over synthetic audio."""
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from audiogen.audio.io import load_audio
from audiogen.cli import generate, train
from audiogen.threads import available_cores
from audiogen.training.trained import load_trained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 8000

pytestmark = pytest.mark.slow


def tiny_config(folder, **changes):
    config = {"seq_len": 64, "frame_sizes": [4, 16], "dim": 16, "num_rnn_layers": 1,
              "emb_size": 8, "piece_dur": 0.128}
    config.update(changes)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "tiny.config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Five 1 s files at 16 kHz (stereo sines with noise): training resamples them to 8 kHz."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for i in range(5):
        tone = 0.4 * np.sin(2 * np.pi * (220 + 55 * i) * t) + 0.02 * rng.standard_normal(16000)
        sf.write(folder / f"tone{i}.wav", np.stack([tone, tone], 1), 16000, subtype="PCM_16")
    return str(folder)


def train_args(corpus, folder, *extra):
    return ["--data_dir", corpus, "--config_file", tiny_config(folder), "--id", "run",
            "--logdir_root", os.path.join(folder, "logdir"),
            "--output_dir", os.path.join(folder, "generated"), "--sample_rate", str(RATE),
            "--batch_size", "4", "--num_val_batches", "1", "--output_file_dur", "0.25",
            "--jit_compile", "false", *extra]


def checkpoints(folder, sub="checkpoints"):
    names = os.listdir(os.path.join(folder, "logdir", "run", sub))
    return sorted(int(m.group(1)) for n in names if (m := re.match(r"ckpt-(\d+)\.index$", n)))


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("run"))
    code = train.main(train_args(corpus, folder, "--num_epochs", "2", "--temperature", "0.5",
                                 "1.5", "--max_generate_per_epoch", "2",
                                 "--max_checkpoints", "None"))
    assert code == 0
    return folder


def test_help_lists_every_seed_parameter():
    train_names = (
        "id data_dir verbose logdir_root output_dir config_file num_epochs batch_size optimizer "
        "learning_rate reduce_learning_rate_after momentum checkpoint_every checkpoint_policy "
        "max_checkpoints resume resume_from early_stopping_patience generate "
        "max_generate_per_epoch sample_rate output_file_dur temperature seed seed_offset "
        "num_val_batches").split()
    generate_names = ("output_path checkpoint_path config_file dur num_seqs sample_rate "
                      "temperature seed seed_offset").split()
    for script, names in (("train.py", train_names), ("generate.py", generate_names)):
        out = subprocess.run([sys.executable, os.path.join(ROOT, script), "--help"],
                             capture_output=True, text=True, check=True).stdout
        for name in names:
            assert f"--{name}" in out, f"{script} --help lacks --{name}"


def test_training_writes_checkpoints_audio_config_and_logs(trained):
    assert checkpoints(trained) == [1, 2]
    run = os.path.join(trained, "logdir", "run")
    with open(os.path.join(run, "training.json")) as f:
        assert json.load(f)["sample_rate"] == RATE
    assert os.path.exists(os.path.join(run, "resolved.config.json"))
    generated = sorted(os.listdir(os.path.join(trained, "generated", "run")))
    assert generated == ["epoch_001_t0.5_0.wav", "epoch_001_t1.5_1.wav",
                         "epoch_002_t0.5_0.wav", "epoch_002_t1.5_1.wav"]
    info = sf.info(os.path.join(trained, "generated", "run", generated[0]))
    assert (info.samplerate, info.frames, info.subtype) == (RATE, RATE // 4, "PCM_16")
    events = [f for _, _, files in os.walk(os.path.join(run, "tensorboard")) for f in files]
    assert sum("tfevents" in f for f in events) >= 2  # scalars and generated audio


def test_generate_cycles_temperatures_and_uses_training_rate(trained, tmp_path, capsys):
    out = str(tmp_path / "out.wav")
    code = generate.main(["--checkpoint_path", os.path.join(trained, "logdir", "run"),
                          "--output_path", out, "--num_seqs", "3", "--temperature", "0.5",
                          "0.9", "--dur", "0.5", "--rng_seed", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "temperature 0.5" in printed and "temperature 0.9" in printed
    assert f"Generating 3 x {RATE // 2} samples (xla engine)" in printed   # a tiny model
    # Progress: stdout is no terminal here, so plain lines, the last one a summary.
    assert re.search(rf"^Generating: {3 * RATE // 2:,} samples in \d+:\d\d, ", printed, re.M)
    assert sorted(os.listdir(tmp_path)) == ["out_0.wav", "out_1.wav", "out_2.wav"]
    for name in os.listdir(tmp_path):
        info = sf.info(str(tmp_path / name))
        assert (info.samplerate, info.frames) == (RATE, RATE // 2)


def test_generate_in_groups_writes_the_same_audio(trained, tmp_path, capsys):
    """A new generate.py process runs 4 sequences as one group per core, each op on one
    thread; in this process (TensorFlow already started) as one group: the same files."""
    args = ["--checkpoint_path", os.path.join(trained, "logdir", "run"), "--num_seqs", "4",
            "--temperature", "0.5", "0.9", "--dur", "0.25", "--rng_seed", "5"]
    done = subprocess.run([sys.executable, os.path.join(ROOT, "generate.py"), *args,
                           "--output_path", str(tmp_path / "groups.wav")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    groups = min(available_cores(), 4)
    assert (f"{groups} groups of sequences at once" in done.stdout) == (groups > 1)
    assert generate.main(args + ["--output_path", str(tmp_path / "one.wav")]) == 0
    assert "groups of sequences" not in capsys.readouterr().out
    for i in range(4):
        np.testing.assert_array_equal(sf.read(str(tmp_path / f"groups_{i}.wav"))[0],
                                      sf.read(str(tmp_path / f"one_{i}.wav"))[0])


def test_generate_other_sample_rate_changes_only_the_header(trained, tmp_path, capsys):
    out = str(tmp_path / "one.wav")
    assert generate.main(["--checkpoint_path", os.path.join(trained, "logdir", "run", "checkpoints",
                                                            "ckpt-1"),
                          "--output_path", out, "--dur", "0.5", "--sample_rate", "16000"]) == 0
    assert "trained at 8000 Hz" in capsys.readouterr().out
    info = sf.info(out)
    assert (info.samplerate, info.frames) == (16000, RATE // 2)


def test_generate_with_seed_begins_with_the_seed_and_plots(trained, corpus, tmp_path):
    out = str(tmp_path / "seeded.wav")
    seed = os.path.join(corpus, "tone2.wav")
    assert generate.main(["--checkpoint_path", os.path.join(trained, "logdir", "run"),
                          "--output_path", out, "--dur", "0.25", "--seed", seed,
                          "--seed_offset", "0.5s", "--seed_dur", "0.125", "--plot"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["seeded.png", "seeded.wav"]
    with open(tmp_path / "seeded.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    audio, rate = sf.read(out)
    assert len(audio) == RATE // 8 + RATE // 4
    expected = load_audio(seed, RATE)[RATE // 2: RATE // 2 + RATE // 8]
    # mu-law quantization error near 0.4 amplitude is below 0.02
    np.testing.assert_allclose(audio[:RATE // 8], expected, atol=0.02)


def test_too_many_temperatures_is_an_error_and_writes_nothing(trained, tmp_path, capsys):
    code = generate.main(["--checkpoint_path", os.path.join(trained, "logdir", "run"),
                          "--output_path", str(tmp_path / "x.wav"), "--num_seqs", "1",
                          "--temperature", "0.5", "0.9"])
    assert code != 0
    assert "got 2 values for --num_seqs 1" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_resume_continues_epochs_and_optimizer(trained, corpus, capsys):
    code = train.main(train_args(corpus, trained, "--num_epochs", "3", "--generate", "false",
                                 "--max_checkpoints", "None"))
    assert code == 0
    printed = capsys.readouterr().out
    match = re.search(r"Resumed from .*ckpt-2 at epoch 2 \(optimizer step (\d+)\)", printed)
    assert match and int(match.group(1)) > 0
    assert checkpoints(trained) == [1, 2, 3]


def test_resume_with_changed_config_names_the_keys(trained, corpus, capsys):
    args = train_args(corpus, trained, "--num_epochs", "4")
    args[args.index("--config_file") + 1] = tiny_config(os.path.join(trained, "logdir"), dim=32)
    assert train.main(args) != 0
    assert "dim: 16 -> 32" in capsys.readouterr().err
    assert checkpoints(trained)[-1] < 4


def test_best_policy_early_stopping_and_learning_rate_decay(corpus, tmp_path, capsys):
    # learning rate 0: validation loss never improves, so Best saves once and training stops
    # after `early_stopping_patience` further epochs.
    code = train.main(train_args(corpus, str(tmp_path), "--num_epochs", "6", "--optimizer", "sgd",
                                 "--learning_rate", "0", "--checkpoint_policy", "Best",
                                 "--early_stopping_patience", "1", "--generate", "false"))
    assert code == 0
    assert checkpoints(str(tmp_path)) == [1]
    epochs_run = re.findall(r"^epoch (\d+) done", capsys.readouterr().out, re.M)
    assert epochs_run == ["1", "2"]

    code = train.main(train_args(corpus, str(tmp_path / "decay"), "--num_epochs", "2",
                                 "--reduce_learning_rate_after", "1", "--generate", "false"))
    assert code == 0
    rates = re.findall(r"^epoch \d+ done:.*learning_rate: ([\d.]+)", capsys.readouterr().out, re.M)
    assert float(rates[0]) == pytest.approx(0.001, abs=1e-4)
    assert float(rates[1]) == pytest.approx(0.001 * math.exp(-0.1), abs=1e-4)


def test_bad_inputs_fail_clearly(corpus, tmp_path, capsys):
    args = train_args(corpus, str(tmp_path), "--num_epochs", "1")
    no_data = args[2:]  # without --data_dir
    assert train.main(no_data) != 0
    assert "--data_dir is required" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    args[1] = str(empty)
    assert train.main(args) != 0
    assert str(empty) in capsys.readouterr().err
    bad = tmp_path / "bad.config.json"
    bad.write_text('{"seq_len": 100, "frame_sizes": [4, 16]}')
    args[1] = corpus
    args[args.index("--config_file") + 1] = str(bad)
    assert train.main(args) != 0
    assert "'seq_len' (100) must be divisible" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(tmp_path, "logdir"))


def test_resume_from_seeded_generation_interval_and_quiet_progress(trained, corpus, tmp_path,
                                                                   capsys):
    """--resume_from another run, --seed/--seed_offset for audio generated in training,
    --checkpoint_every, --momentum with rmsprop and --verbose false (a progress bar, no step
    lines)."""
    source = os.path.join(trained, "logdir", "run", "checkpoints", "ckpt-2")
    args = train_args(corpus, str(tmp_path), "--num_epochs", "4", "--resume_from", source,
                      "--checkpoint_every", "2", "--optimizer", "rmsprop", "--momentum", "0.5",
                      "--seed", os.path.join(corpus, "tone1.wav"), "--seed_offset", "800",
                      "--verbose", "false")
    assert train.main(args) == 0
    printed = capsys.readouterr().out
    assert "Resumed from" in printed and "at epoch 2" in printed
    assert re.search(rf"^Generating: {RATE // 4:,} samples in ", printed, re.M)  # the epoch's clip
    assert not re.search(r"^epoch \d+ step", printed, re.M)
    assert checkpoints(str(tmp_path)) == [4]
    (name,) = os.listdir(os.path.join(tmp_path, "generated", "run"))
    audio, _ = sf.read(os.path.join(tmp_path, "generated", "run", name))
    # up to 1 s of seed (the file has RATE - 800 samples left after the offset), then
    # output_file_dur of generated audio
    assert len(audio) == RATE - 800 + RATE // 4
    expected = load_audio(os.path.join(corpus, "tone1.wav"), RATE)[800:]
    np.testing.assert_allclose(audio[:RATE - 800], expected, atol=0.02)


def test_init_from_takes_another_runs_weights_and_counts_epochs_from_one(trained, corpus,
                                                                        tmp_path, capsys):
    source = os.path.join(trained, "logdir", "run")
    args = train_args(corpus, str(tmp_path), "--num_epochs", "1", "--init_from", source,
                      "--optimizer", "sgd", "--learning_rate", "0", "--generate", "false")
    assert train.main(args) == 0
    assert "Weights from" in capsys.readouterr().out
    assert checkpoints(str(tmp_path)) == [1]
    before = load_trained(source).model.weights
    after = load_trained(os.path.join(tmp_path, "logdir", "run")).model.weights
    assert len(before) == len(after) > 3
    for old, now in zip(before, after):
        np.testing.assert_array_equal(old.numpy(), now.numpy(), err_msg=old.path)


def test_generate_config_file_override_must_match_the_checkpoint(trained, tmp_path, capsys):
    run = os.path.join(trained, "logdir", "run")
    out = str(tmp_path / "o.wav")
    same = os.path.join(run, "resolved.config.json")
    renamed = str(tmp_path / "same.config.json")
    with open(same) as f, open(renamed, "w") as g:
        g.write(f.read())
    assert generate.main(["--checkpoint_path", run, "--output_path", out, "--dur", "0.1",
                          "--config_file", renamed]) == 0
    other = tiny_config(str(tmp_path / "other"), dim=24)
    assert generate.main(["--checkpoint_path", run, "--output_path", out + "2.wav",
                          "--dur", "0.1", "--config_file", other]) != 0
    assert "does not match the config's model" in capsys.readouterr().err
    assert not os.path.exists(out + "2.wav")
