import os

import numpy as np
import soundfile

from audio_fixtures import peak_frequency, sine, write_audio
from audiogen.audio.chunk import main

RATE = 8000


def written(output_dir):
    return sorted(os.listdir(output_dir))


def test_cuts_equal_pieces_named_by_position(tmp_path, capsys):
    # 2.5 pieces of 0.1 s: two pieces, the half-piece tail left out.
    src = write_audio(tmp_path / "long take.flac", sine(440, RATE, 2000), RATE)
    out = tmp_path / "out"
    assert main([src, "--output_dir", str(out), "--chunk_dur", "0.1"]) == 0
    assert written(out) == ["long take_0000.wav", "long take_0001.wav"]
    pieces = [soundfile.read(str(out / name), dtype="float32")[0] for name in written(out)]
    assert [len(p) for p in pieces] == [800, 800]
    np.testing.assert_allclose(np.concatenate(pieces), sine(440, RATE, 1600), atol=1e-3)
    assert "wrote 2 pieces" in capsys.readouterr().out


def test_resamples_when_asked(tmp_path):
    src = write_audio(tmp_path / "a.wav", sine(1000, 22050, 22050), 22050)
    out = tmp_path / "out"
    assert main([src, "--output_dir", str(out), "--chunk_dur", "0.5", "--sample_rate", "16000"]) == 0
    piece, rate = soundfile.read(str(out / "a_0001.wav"), dtype="float32")
    assert (rate, len(piece)) == (16000, 8000)
    assert abs(peak_frequency(piece, rate) - 1000) < 5


def test_drops_silent_pieces_and_reports_them(tmp_path, capsys):
    loud, quiet = sine(440, RATE, 800), np.full(800, 1e-4, np.float32)  # quiet: -80 dBFS
    samples = np.concatenate([loud, quiet, loud, np.zeros(800, np.float32)])
    src = write_audio(tmp_path / "s.wav", samples, RATE, subtype="FLOAT")
    out = tmp_path / "out"
    args = [src, "--output_dir", str(out), "--chunk_dur", "0.1", "--drop_silent"]
    assert main(args) == 0
    assert written(out) == ["s_0000.wav", "s_0002.wav"]
    assert "wrote 2 pieces" in capsys.readouterr().out
    # A threshold below the quiet piece's level keeps it.
    assert main(args + ["--silence_db", "-90", "--output_dir", str(tmp_path / "all")]) == 0
    assert written(tmp_path / "all") == ["s_0000.wav", "s_0001.wav", "s_0002.wav"]


def test_directories_are_searched(tmp_path):
    write_audio(tmp_path / "in" / "x.wav", sine(440, RATE, 800), RATE)
    write_audio(tmp_path / "in" / "deep" / "y.ogg", sine(440, RATE, 1600), RATE)
    out = tmp_path / "out"
    assert main([str(tmp_path / "in"), "--output_dir", str(out), "--chunk_dur", "0.1"]) == 0
    assert written(out) == ["x_0000.wav", "y_0000.wav", "y_0001.wav"]


def test_bad_input_fails_with_a_message_and_writes_nothing(tmp_path, capsys):
    good = write_audio(tmp_path / "good.wav", sine(440, RATE, 800), RATE)
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not flac")
    out = tmp_path / "out"
    assert main([good, str(tmp_path / "missing.wav"), "--output_dir", str(out),
                 "--chunk_dur", "0.1"]) == 1
    assert "missing.wav: no such file" in capsys.readouterr().err
    assert main([good, str(bad), "--output_dir", str(out), "--chunk_dur", "0.1"]) == 1
    assert "bad.flac: not a readable audio file" in capsys.readouterr().err
    assert not out.exists()
    assert main([good, "--output_dir", str(out), "--chunk_dur", "0"]) == 2
    assert "--chunk_dur" in capsys.readouterr().err
