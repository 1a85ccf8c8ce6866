"""Every bad input a user can give train.py and generate.py gets a short message naming the
thing and what is expected, exit code 2 (1 for a run stopped by its data), no traceback, and
nothing written."""
import json
import os
import shutil
import subprocess
import sys

import note_seq
import numpy as np
import pytest
import soundfile as sf

from audiogen.cli import generate, train
from run_helpers import DEMO_MIDI, ROOT, musicvae_args, run_dir, samplernn_args

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A trained tiny SampleRNN and MusicVAE (one short epoch each)."""
    folder = str(tmp_path_factory.mktemp("runs"))
    sr, mv = os.path.join(folder, "samplernn"), os.path.join(folder, "musicvae")
    assert train.main(samplernn_args(sr, 1, "--generate", "false", "--steps_per_epoch", "16",
                                     "--verbose", "false")) == 0
    assert train.main(musicvae_args(mv, 10, 10)) == 0
    return {"samplernn": sr, "musicvae": mv}


def answered(capsys, code, expected, *fragments):
    """The exit code is `expected` and stderr holds one `error:` line with every fragment."""
    err = capsys.readouterr().err
    assert code == expected, err
    assert "error: " in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def config_file(folder, content):
    path = os.path.join(folder, "bad.config.json")
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize("content,fragments", [
    ("{\"dim\": 16,", ["not valid JSON at line 1"]),
    ({"dimm": 16}, ["unknown key 'dimm'", "did you mean 'dim'"]),
    ({"dim": "16"}, ["key 'dim' must be of type int"]),
    ({"dim": 0}, ["key 'dim' must be a positive integer"]),
    ({"num_rnn_layers": -1}, ["key 'num_rnn_layers' must be a positive integer"]),
    ({"frame_sizes": [16, 4]}, ["key 'frame_sizes' must be ascending"]),
    ({"piece_dur": -1.0}, ["key 'piece_dur' must be positive"]),
    ({"model": "wavenet"}, ["key 'model' must be one of"]),
    ({"model": "musicvae", "batch_size": 0}, ["key 'batch_size' must be a positive integer"]),
    ({"model": "musicvae", "encoder_params": {"hidden": 3}},
     ["unknown key 'encoder_params.hidden'"]),
])
def test_bad_config_files(tmp_path, capsys, content, fragments):
    args = samplernn_args(str(tmp_path), 1)
    args[args.index("--config_file") + 1] = config_file(str(tmp_path), content)
    answered(capsys, train.main(args), 2, "bad.config.json", *fragments)
    assert not os.path.exists(os.path.join(str(tmp_path), "logdir"))


def test_bad_audio_folders(tmp_path, capsys):
    args = samplernn_args(str(tmp_path), 1)
    data = args.index("--data_dir") + 1
    args[data] = str(tmp_path / "missing")
    answered(capsys, train.main(args), 2, "missing", "is not a directory")
    (tmp_path / "empty").mkdir()
    args[data] = str(tmp_path / "empty")
    answered(capsys, train.main(args), 2, "holds no readable audio files", "none found")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "zero.wav").write_bytes(b"")
    (broken / "noise.mp3").write_bytes(os.urandom(3000))
    args[data] = str(broken)
    answered(capsys, train.main(args), 2, "2 found, none readable")
    assert not os.path.exists(os.path.join(str(tmp_path), "logdir"))


def test_corrupt_files_among_good_ones_are_skipped_counted_and_named(tmp_path, capsys):
    args = samplernn_args(str(tmp_path), 1, "--generate", "false", "--steps_per_epoch", "16",
                          "--verbose", "false")
    audio = args[args.index("--data_dir") + 1]
    good = os.path.join(audio, "tone0.wav")
    with open(good, "rb") as f:
        data = f.read()
    with open(os.path.join(audio, "truncated.wav"), "wb") as f:
        f.write(data[:len(data) // 2])
    with open(os.path.join(audio, "empty.flac"), "wb"):
        pass
    with open(os.path.join(audio, "noise.ogg"), "wb") as f:
        f.write(os.urandom(2000))
    with pytest.warns(UserWarning, match="skipped 3 of 8 audio files") as caught:
        assert train.main(args) == 0
    message = str(caught[0].message)
    assert all(name in message for name in ("truncated.wav", "empty.flac", "noise.ogg"))


def test_audio_of_every_kind_trains(tmp_path):
    """8-bit, 24-bit and float WAV, stereo, 8 kHz and 48 kHz, and all-silent files."""
    folder = tmp_path / "kinds"
    folder.mkdir()
    t = np.arange(48000) / 48000
    tone = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(folder / "u8.wav", tone[::2], 24000, subtype="PCM_U8")
    sf.write(folder / "s24.wav", tone, 48000, subtype="PCM_24")
    sf.write(folder / "float.wav", tone[::6], 8000, subtype="FLOAT")
    sf.write(folder / "stereo.wav", np.stack([tone, -tone], 1), 48000, subtype="PCM_16")
    sf.write(folder / "silent.wav", np.zeros(16000), 16000, subtype="PCM_16")
    args = samplernn_args(str(tmp_path), 1, "--generate", "false", "--batch_size", "2",
                          "--verbose", "false")
    args[args.index("--data_dir") + 1] = str(folder)
    assert train.main(args) == 0


def first_tune_in(numerator):
    """The first demo tune whose meter has `numerator` beats."""
    for name in sorted(n for n in os.listdir(DEMO_MIDI) if n.endswith(".mid")):
        signatures = note_seq.midi_file_to_note_sequence(
            os.path.join(DEMO_MIDI, name)).time_signatures
        if signatures and signatures[0].numerator == numerator:
            return os.path.join(DEMO_MIDI, name)
    raise AssertionError(f"no demo tune in {numerator} beats")


def test_bad_midi_folders(tmp_path, capsys):
    midi = tmp_path / "unusable"
    midi.mkdir()
    drums = note_seq.NoteSequence()
    drums.notes.add(pitch=36, velocity=100, start_time=0.0, end_time=0.5, is_drum=True)
    drums.total_time = 0.5
    note_seq.sequence_proto_to_midi_file(drums, str(midi / "drums.mid"))
    (midi / "zero.mid").write_bytes(b"")
    (midi / "noise.mid").write_bytes(os.urandom(500))
    shutil.copy(first_tune_in(3), midi / "waltz.mid")
    args = musicvae_args(str(tmp_path), 10, 10)
    config = args[args.index("--config_file") + 1]
    with open(config) as f:
        content = json.load(f)
    content.update(train_dir=str(midi), eval_dir=None, eval_fraction=0.0)
    with open(config, "w") as f:
        json.dump(content, f)
    answered(capsys, train.main(args), 2, "4 MIDI files found", "no melody", "unparsable MIDI",
             "no segment in a meter used")
    answered(capsys, train.main(args + ["--train_dir", str(tmp_path / "none")]), 2,
             "MIDI folder not found")


def test_bad_generation_requests(runs, tmp_path, capsys):
    sr, mv = run_dir(runs["samplernn"]), run_dir(runs["musicvae"])
    out = str(tmp_path / "out.wav")
    for flags in (["--temperature", "0"], ["--temperature", "-1"], ["--dur", "0"],
                  ["--dur", "x"], ["--num_seqs", "x"]):
        with pytest.raises(SystemExit) as exit_:
            generate.main(["--checkpoint_path", sr, "--output_path", out, *flags])
        assert exit_.value.code == 2
    capsys.readouterr()
    answered(capsys, generate.main(["--checkpoint_path", sr, "--output_path", out,
                                    "--num_seqs", "1", "--temperature", "0.5", "0.9"]), 2,
             "--temperature got 2 values for --num_seqs 1")
    answered(capsys, generate.main(["--checkpoint_path", sr, "--output_path", out,
                                    "--num_seqs", "0"]), 2, "--num_seqs must be at least 1")
    short = os.path.join(runs["samplernn"], "audio", "tone0.wav")
    answered(capsys, generate.main(["--checkpoint_path", sr, "--output_path", out, "--seed",
                                    short, "--seed_offset", "2s"]), 2, "tone0.wav",
             "past the end of the file")
    answered(capsys, generate.main(["--checkpoint_path", sr, "--output_path", out, "--seed",
                                    short, "--seed_offset", "soon"]), 2, "--seed_offset 'soon'")
    answered(capsys, generate.main(["--checkpoint_path", str(tmp_path / "nothing"),
                                    "--output_path", out]), 2, "no checkpoint found")
    # a checkpoint of the other model kind
    answered(capsys, generate.main(["--checkpoint_path", sr, "--output_path", out,
                                    "--config_file", os.path.join(mv, "..", "..",
                                                                  "tiny.config.json")]), 2,
             "does not match the config's model")
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(os.urandom(200))
    answered(capsys, generate.main(["--checkpoint_path", mv, "--output_path",
                                    str(tmp_path / "r.mid"), "--reconstruct", str(corrupt)]), 2,
             "corrupt.mid", "cannot parse MIDI")
    assert not [n for n in os.listdir(tmp_path) if n.endswith((".wav", ".mid")) and
                n != "corrupt.mid"]


def test_resuming_from_the_other_model_kind_names_the_difference(runs, capsys):
    args = samplernn_args(runs["samplernn"], 2, "--generate", "false",
                          "--resume_from", run_dir(runs["musicvae"]), "--id", "other")
    answered(capsys, train.main(args), 2, "cannot resume from", "model")


def test_a_subprocess_shows_no_traceback_and_no_tensorflow_log_lines(runs, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, os.path.join(ROOT, "generate.py"), "--checkpoint_path",
                           run_dir(runs["samplernn"]), "--output_path", str(tmp_path / "a.wav"),
                           "--dur", "0.05", "--rng_seed", "1"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    noise = [line for line in lines if "tensorflow/" in line or line.startswith(("I0000",
                                                                                 "W0000", "E0000"))]
    assert not noise, "\n".join(noise)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--config_file",
                           str(tmp_path / "missing.config.json")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 2 and "error: " in done.stderr and "Traceback" not in done.stderr
