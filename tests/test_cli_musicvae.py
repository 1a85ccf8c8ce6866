"""End to end: train.py and generate.py on a tiny MusicVAE over real demo tunes."""
import json
import os
import shutil

import note_seq
import numpy as np
import pretty_midi
import pytest
import tensorflow as tf
from PIL import Image

from audiogen.cli import generate, train
from audiogen.midi.markers import read_markers
from audiogen.training.checkpoints import load_training_args, resolve_checkpoint, saved_counter
from audiogen.training.trained import load_trained
from test_midi_meters import eighths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_MIDI = os.path.join(ROOT, "data", "demo", "midi", "oneills")
FOUR_FOUR = ["0001-005017.mid", "0001-005027.mid", "0001-00503.mid", "0001-005034.mid"]

pytestmark = pytest.mark.slow


def tiny_config(tmp_path, **changes):
    config = {
        "model": "musicvae", "batch_size": 8, "num_workers": 1, "slice_bar": 2,
        "train_dir": str(tmp_path / "midi"), "eval_dir": None, "eval_fraction": 0.25,
        "z_size": 8, "encoder_params": {"embed_size": 8, "hidden_size": 16, "n_layers": 1},
        "decoder_params": {"embed_size": 8, "hidden_size": 16, "n_layers": 1},
        "num_steps": 20, "evaluate_interval": 10, "advanced_interval": 10, "print_interval": 5,
        "learning_rate": 0.003, "beta_settings": {"start_beta": 0.0, "end_beta": 0.1,
                                                  "duration": 10},
        "free_bits": 2.0,
    }
    config.update(changes)
    path = tmp_path / "tiny.config.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("musicvae")
    midi = tmp_path / "midi"
    midi.mkdir()
    for name in sorted(n for n in os.listdir(DEMO_MIDI) if n.endswith(".mid"))[:60]:
        shutil.copy(os.path.join(DEMO_MIDI, name), midi / name)
    config = tiny_config(tmp_path)
    logdir = str(tmp_path / "logdir")
    code = train.main(["--config_file", config, "--id", "run", "--logdir_root", logdir])
    assert code == 0
    return tmp_path, config, logdir, os.path.join(logdir, "run")


def read_bars(path):
    sequence = note_seq.midi_file_to_note_sequence(path)
    assert sequence.notes, f"{path} has no notes"
    return sequence.total_time / 2.0  # 120 qpm: 2 s per 4/4 bar


def test_training_writes_checkpoints_config_and_summaries(trained_run):
    _, _, _, run_dir = trained_run
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints")))[-1] == "ckpt-20.index"
    assert os.path.exists(os.path.join(run_dir, "best", "checkpoint"))
    assert os.path.exists(os.path.join(run_dir, "resolved.config.json"))
    events = [f for _, _, files in os.walk(os.path.join(run_dir, "tensorboard")) for f in files]
    assert any("tfevents" in f for f in events)
    assert os.listdir(os.path.join(run_dir, "tensorboard", "advanced"))


def test_sample_writes_requested_count_of_two_bar_files_and_plots(trained_run, tmp_path):
    _, _, _, run_dir = trained_run
    out = str(tmp_path / "mel.mid")
    assert generate.main(["--checkpoint_path", run_dir, "--output_path", out, "--num_seqs", "3",
                          "--temperature", "0.5", "1.0", "--rng_seed", "1", "--plot"]) == 0
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".mid"))
    assert names == ["mel_0.mid", "mel_1.mid", "mel_2.mid"]
    assert sorted(os.listdir(tmp_path)) == sorted(names + ["mel_0.png", "mel_1.png", "mel_2.png"])
    for name in names:
        assert read_bars(str(tmp_path / name)) <= 2.0 + 1e-6


def test_interpolate_and_reconstruct_and_plot(trained_run, tmp_path):
    _, _, _, run_dir = trained_run
    a, b = (os.path.join(DEMO_MIDI, n) for n in FOUR_FOUR[:2])
    out = str(tmp_path / "interp.mid")
    assert generate.main(["--checkpoint_path", run_dir, "--output_path", out,
                          "--interpolate", a, b, "--steps", "4", "--rng_seed", "1", "--plot"]) == 0
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"interp_{i}.{ext}" for i in range(4) for ext in ("mid", "png")]
        + ["interp_all.mid", "interp_all.png"])
    with Image.open(tmp_path / "interp_all.png") as image:  # the 4 steps stacked
        assert image.format == "PNG" and image.height > 4 * 100
    assert read_bars(str(tmp_path / "interp_all.mid")) > 6.0  # 4 x 2 bars in a row
    out = str(tmp_path / "recon.mid")
    assert generate.main(["--checkpoint_path", run_dir, "--output_path", out,
                          "--reconstruct", a, "--rng_seed", "1"]) == 0
    assert os.path.exists(out) and not os.path.exists(str(tmp_path / "recon.png"))


def test_input_without_melody_is_a_clear_error(trained_run, tmp_path, capsys):
    _, _, _, run_dir = trained_run
    not_four_four = os.path.join(DEMO_MIDI, "0001-00501.mid")
    code = generate.main(["--checkpoint_path", run_dir, "--output_path", str(tmp_path / "r.mid"),
                          "--reconstruct", not_four_four])
    assert code != 0
    assert "0001-00501.mid: no melody" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_resume_continues_steps_and_flags_override_config(trained_run):
    tmp_path, config, logdir, run_dir = trained_run
    code = train.main(["--config_file", config, "--id", "run", "--logdir_root", logdir,
                       "--num_steps", "30"])
    assert code == 0
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints")))[-1] == "ckpt-30.index"
    with open(os.path.join(run_dir, "resolved.config.json")) as f:
        assert json.load(f)["num_steps"] == 30
    assert load_training_args(run_dir)["id"] == "run"


def test_resume_with_changed_architecture_is_refused(trained_run, capsys):
    tmp_path, config, logdir, _ = trained_run
    code = train.main(["--config_file", config, "--id", "run", "--logdir_root", logdir,
                       "--set", "encoder_params.hidden_size=32"])
    assert code != 0
    assert "encoder_params.hidden_size: 16 -> 32" in capsys.readouterr().err


def test_empty_corpus_counts_files(tmp_path, capsys):
    (tmp_path / "midi").mkdir()
    shutil.copy(os.path.join(DEMO_MIDI, "0001-00501.mid"), tmp_path / "midi")
    (tmp_path / "midi" / "junk.mid").write_bytes(b"not a midi file")
    code = train.main(["--config_file", tiny_config(tmp_path), "--logdir_root",
                       str(tmp_path / "logdir")])
    assert code != 0
    err = capsys.readouterr().err
    assert "MIDI files found" in err and "rejected" in err and "no segment in a meter used" in err


def test_ckpt_path_starts_a_new_run_from_another_runs_checkpoint(trained_run, capsys):
    tmp_path, config, logdir, run_dir = trained_run
    source = os.path.join(run_dir, "checkpoints", "ckpt-20")
    code = train.main(["--config_file", config, "--id", "finetune", "--logdir_root", logdir,
                       "--ckpt_path", source, "--num_steps", "30"])
    assert code == 0
    assert "Resumed from" in capsys.readouterr().out
    names = os.listdir(os.path.join(logdir, "finetune", "checkpoints"))
    assert "ckpt-30.index" in names and "ckpt-20.index" not in names


def test_init_from_starts_a_new_run_with_another_runs_weights(trained_run, capsys):
    """Weights only: the new run counts from step 0 with a fresh optimizer, and its melodies
    may be longer (a curriculum); with a zero learning rate its weights stay the source's."""
    _, config, logdir, run_dir = trained_run
    source = os.path.join(run_dir, "checkpoints", "ckpt-20")
    code = train.main(["--config_file", config, "--id", "longer", "--logdir_root", logdir,
                       "--init_from", source, "--slice_bar", "4", "--num_steps", "10",
                       "--learning_rate", "0", "--set", "decay_rate=1.0"])
    assert code == 0
    assert f"Weights from {source}" in capsys.readouterr().out
    new = os.path.join(logdir, "longer", "checkpoints", "ckpt-10")
    saved = tf.train.load_checkpoint(new)
    assert saved.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 10
    before, after = (load_trained(c).model.weights for c in (source, new))
    assert len(before) == len(after) > 5
    for old, now in zip(before, after):
        assert old.path.split("/", 1)[1] == now.path.split("/", 1)[1]
        np.testing.assert_array_equal(old.numpy(), now.numpy(), err_msg=old.path)
    assert load_training_args(os.path.join(logdir, "longer"))["init_from"] == source
    # run again, the run resumes its own state and says that --init_from is not used
    code = train.main(["--config_file", config, "--id", "longer", "--logdir_root", logdir,
                       "--init_from", run_dir, "--slice_bar", "4", "--num_steps", "20",
                       "--learning_rate", "0", "--set", "decay_rate=1.0"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"--init_from {run_dir} is not used" in out and "Weights from" not in out
    assert saved_counter(resolve_checkpoint(os.path.join(logdir, "longer"))) == 20


def test_init_from_a_model_of_other_shapes_is_refused_before_anything_is_written(trained_run,
                                                                                   capsys):
    _, config, logdir, run_dir = trained_run
    code = train.main(["--config_file", config, "--id", "wider", "--logdir_root", logdir,
                       "--init_from", run_dir, "--set", "encoder_params.hidden_size=32"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--init_from needs a checkpoint of the same model" in err and run_dir in err
    wider = os.path.join(logdir, "wider")
    assert not os.path.exists(wider) or not os.listdir(wider)


def test_decay_rate_lowers_the_learning_rate_every_step_after_the_start(trained_run):
    _, config, logdir, run_dir = trained_run
    code = train.main(["--config_file", config, "--id", "decay", "--logdir_root", logdir,
                       "--ckpt_path", os.path.join(run_dir, "checkpoints", "ckpt-20"),
                       "--num_steps", "30", "--decay_rate", "0.9", "--min_learning_rate", "0.001",
                       "--decay_start_step", "24"])
    assert code == 0
    saved = tf.train.load_checkpoint(os.path.join(logdir, "decay", "checkpoints", "ckpt-30"))
    rate = saved.get_tensor("optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")
    assert rate == pytest.approx(0.003 * 0.9 ** 6, rel=1e-5)


# === Meters and the context of written MIDI ===

def run_with(run_dir, folder, **changes):
    """A copy of the trained run whose resolved config has `changes` (None: the key removed, as
    in runs saved before the key existed)."""
    copy = os.path.join(folder, "run_copy")
    shutil.copytree(run_dir, copy)
    path = os.path.join(copy, "resolved.config.json")
    with open(path) as f:
        config = json.load(f)
    for key, value in changes.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    with open(path, "w") as f:
        json.dump(config, f)
    return copy


def midi_context(path):
    """(tempo changes, programs, time signatures, markers) of a written file."""
    pm = pretty_midi.PrettyMIDI(path)
    meters = [(t.numerator, t.denominator) for t in pm.time_signature_changes]
    return (list(np.round(pm.get_tempo_changes()[1], 2)),
            sorted({i.program for i in pm.instruments}), meters, read_markers(path))


def test_2_4_files_under_a_run_with_meters_2_4(trained_run, tmp_path, capsys):
    _, _, _, run_dir = trained_run
    polka = eighths(tmp_path / "polka.mid", (2, 4), 32, qpm=90.0, program=41)
    hornpipe = os.path.join(DEMO_MIDI, "0001-00501.mid")            # 2/4, 120 qpm, piano
    out = str(tmp_path / "out" / "recon.mid")
    assert generate.main(["--checkpoint_path", run_dir, "--output_path", out,
                          "--reconstruct", polka]) == 2         # the run's rule: 16-step bars
    assert "polka.mid: no melody to use: no segment in a meter used (found: 2/4 x1" in \
        capsys.readouterr().err
    run = run_with(run_dir, str(tmp_path), meters=["2/4"])
    assert generate.main(["--checkpoint_path", run, "--output_path", out,
                          "--reconstruct", polka, "--rng_seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "polka.mid: melody 1 of 1" in printed and "2/4 segment 0" in printed
    assert "bars 1-4 of the segment (32 steps = 4 bars of 2/4; 0.00-5.33 s, 90 qpm)" in printed
    assert midi_context(out) == ([90.0], [41], [(2, 4)], [])
    out = str(tmp_path / "out" / "interp.mid")
    assert generate.main(["--checkpoint_path", run, "--output_path", out, "--interpolate",
                          polka, hornpipe, "--steps", "3", "--rng_seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "0001-00501.mid: melody 1 of 1" in printed and "bars 1-4 of the segment" in printed
    folder = tmp_path / "out"
    assert midi_context(str(folder / "interp_0.mid"))[:3] == ([90.0], [41], [(2, 4)])
    assert midi_context(str(folder / "interp_1.mid"))[:3] == ([105.0], [0], [(2, 4)])
    assert midi_context(str(folder / "interp_2.mid"))[:3] == ([120.0], [0], [(2, 4)])
    tempi, programs, meters, markers = midi_context(str(folder / "interp_all.mid"))
    assert (tempi, programs, meters) == ([90.0, 105.0, 120.0], [0, 41], [(2, 4)])
    assert [text for _, text in markers] == [
        "step 1 of 3: t=0.00 (polka.mid)", "step 2 of 3: t=0.50",
        "step 3 of 3: t=1.00 (0001-00501.mid)"]
    np.testing.assert_allclose([t for t, _ in markers], [0, 32 * 60 / 90 / 4,
                                                         32 * 60 / 90 / 4 + 32 * 60 / 105 / 4],
                               atol=1e-3)


def test_a_run_saved_without_the_meters_key_uses_16_step_bars(trained_run, tmp_path, capsys):
    _, _, _, run_dir = trained_run
    run = run_with(run_dir, str(tmp_path), meters=None)
    reel = eighths(tmp_path / "reel.mid", (2, 2), 32, qpm=100.0, program=73)
    out = str(tmp_path / "recon.mid")
    assert generate.main(["--checkpoint_path", run, "--output_path", out, "--reconstruct", reel,
                          "--rng_seed", "1", "--qpm", "80"]) == 0
    assert "2/2 segment 0" in capsys.readouterr().out
    assert midi_context(out) == ([80.0], [73], [(2, 2)], [])           # --qpm wins
    polka = eighths(tmp_path / "polka.mid", (2, 4), 32)
    assert generate.main(["--checkpoint_path", run, "--output_path", out, "--reconstruct",
                          polka]) == 2
    assert "no segment in a meter used" in capsys.readouterr().err


def test_qpm_and_program_apply_to_sampled_melodies(trained_run, tmp_path, capsys):
    _, _, _, run_dir = trained_run
    out = str(tmp_path / "mel.mid")
    assert generate.main(["--checkpoint_path", run_dir, "--output_path", out, "--num_seqs", "2",
                          "--qpm", "96", "--program", "40", "--rng_seed", "1"]) == 0
    assert "at 96 qpm, program 40" in capsys.readouterr().out
    for name in ("mel_0.mid", "mel_1.mid"):
        tempi, programs, meters, _ = midi_context(str(tmp_path / name))
        assert (tempi, meters) == ([96.0], [(4, 4)]) and programs in ([40], [])   # [] if silent
    assert generate.main(["--checkpoint_path", run_dir, "--output_path", out,
                          "--rng_seed", "1", "--overwrite"]) == 0
    assert midi_context(str(tmp_path / "mel.mid"))[0] == [120.0]
    with pytest.raises(SystemExit):
        generate.main(["--checkpoint_path", run_dir, "--output_path", out, "--program", "128"])
    assert "expected a MIDI program 0..127, got '128'" in capsys.readouterr().err


def test_training_data_in_the_meters_of_the_config(tmp_path):
    from audiogen.config import load_config
    from audiogen.training.musicvae_task import MusicVAETask
    midi = tmp_path / "midi"
    midi.mkdir()
    for i in range(2):
        eighths(midi / f"polka{i}.mid", (2, 4), 32, first_pitch=50 + i)
    eighths(midi / "jig.mid", (6, 8), 32)
    config = load_config(tiny_config(tmp_path, batch_size=2, eval_fraction=0.0,
                                     meters="2/4,6/8"))
    summary = MusicVAETask(config).datasets().summary
    assert "used: 2/4 x2, 6/8 x1" in summary and "and 2/4, 6/8" in summary
    config = load_config(tiny_config(tmp_path, batch_size=2, eval_fraction=0.0))
    with pytest.raises(ValueError, match="3 rejected .*no segment in a meter used"):
        MusicVAETask(config).datasets()
