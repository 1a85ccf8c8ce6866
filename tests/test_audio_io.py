import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from audio_fixtures import peak_frequency, sine, write_audio
from audiogen.audio import load_audio, save_wav
from audiogen.audio.io import UnsupportedAudioError, decode_audio, probe_audio, resample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 8000
N = 800


def stereo_sine():
    """`[N, 2]`: a 440 Hz sine left, half of it inverted right (mono mix: a quarter of it)."""
    left = sine(440, RATE, N)
    return np.stack([left, -0.5 * left], axis=1), 0.25 * left


# (file name, soundfile subtype, largest allowed error after decoding)
LOSSLESS = [
    ("pcm16.wav", "PCM_16", 1e-4),
    ("pcm24.wav", "PCM_24", 1e-6),
    ("pcm32.wav", "PCM_32", 1e-6),
    ("float.wav", "FLOAT", 1e-6),
    ("pcm8.wav", "PCM_U8", 1e-2),
    ("pcm16.flac", "PCM_16", 1e-4),
    ("pcm24.flac", "PCM_24", 1e-6),
    ("pcm8.flac", "PCM_S8", 1e-2),
    ("UPPER.WAV", "PCM_16", 1e-4),
]


@pytest.mark.parametrize("name,subtype,tolerance", LOSSLESS)
def test_lossless_formats_decode_and_mix_to_mono(tmp_path, name, subtype, tolerance):
    samples, mono = stereo_sine()
    path = write_audio(tmp_path / name, samples, RATE, subtype=subtype)
    loaded = load_audio(path, RATE)
    assert loaded.dtype == np.float32 and loaded.shape == (N,)
    np.testing.assert_allclose(loaded, mono, atol=tolerance)


@pytest.mark.parametrize("name", ["lossy.ogg", "lossy.mp3"])
def test_lossy_formats_decode_to_the_same_tone(tmp_path, name):
    samples, mono = stereo_sine()
    path = write_audio(tmp_path / name, samples, RATE)
    loaded = load_audio(path, RATE)
    assert loaded.shape == (N,)
    assert np.corrcoef(loaded, mono)[0, 1] > 0.99
    assert np.max(np.abs(loaded - mono)) < 0.05


def test_44k_sine_loaded_at_16k_keeps_its_pitch_and_duration(tmp_path):
    path = write_audio(tmp_path / "tone.wav", sine(1000, 44100, 4410), 44100)
    loaded = load_audio(path, 16000)
    assert loaded.shape == (1600,)
    assert peak_frequency(loaded, 16000) == pytest.approx(1000, abs=10)
    # Time-aligned with the input: the resampled tone matches the ideal 16 kHz tone.
    assert np.max(np.abs(loaded[50:-50] - sine(1000, 16000, 1600)[50:-50])) < 0.02


def test_resample_aligns_an_impulse_and_keeps_the_tail():
    impulse = np.zeros(441, np.float32)
    impulse[220] = 1.0
    out = resample(impulse, 44100, 16000).numpy()
    assert out.shape == (160,)  # ceil(441 * 16000 / 44100)
    assert np.argmax(out) == round(220 * 16000 / 44100)


def test_decode_audio_runs_inside_tf_data(tmp_path):
    path = write_audio(tmp_path / "a.flac", sine(440, RATE, N), RATE)
    info = probe_audio(path)
    ds = tf.data.Dataset.from_tensors((path, info.format_id, info.sample_rate)).map(
        lambda p, f, r: decode_audio(tf.io.read_file(p), f, tf.cast(r, tf.int64), 16000))
    out = next(iter(ds)).numpy()
    assert out.shape == (2 * N,)
    assert peak_frequency(out, 16000) == pytest.approx(440, abs=20)


def test_probe_reports_header_facts(tmp_path):
    path = write_audio(tmp_path / "x.flac", np.zeros((300, 2), np.float32), 22050)
    info = probe_audio(path)
    assert (info.container, info.subtype, info.sample_rate, info.channels, info.frames) == \
        ("flac", "PCM_16", 22050, 2, 300)
    assert info.resampled_length(16000) == 218  # ceil(300 * 16000 / 22050)


@pytest.mark.parametrize("make,reason", [
    (lambda d: write_audio(d / "double.wav", np.zeros(10), RATE, subtype="DOUBLE"),
     "encoding DOUBLE cannot be decoded"),
    (lambda d: write_audio(d / "ulaw.wav", np.zeros(10), RATE, subtype="ULAW"),
     "encoding ULAW cannot be decoded"),
    (lambda d: _write_bytes(d / "garbage.wav", b"not audio at all" * 4), "not a readable audio"),
    (lambda d: _truncated(d / "cut.wav", 0.9), "truncated WAV"),
    (lambda d: _truncated(d / "cut.flac", 0.9), "truncated file"),
    (lambda d: _truncated(d / "cut.mp3", 0.9), "truncated file"),
    (lambda d: _truncated(d / "cut.ogg", 0.95), "truncated Ogg file"),
    (lambda d: _write_bytes(d / "notes.txt", b"hello"), "unsupported file extension"),
    (lambda d: str(d / "missing.wav"), "no such file"),
])
def test_unreadable_files_are_reported_with_path_and_reason(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(UnsupportedAudioError, match=reason) as error:
        load_audio(path, RATE)
    assert str(path) in str(error.value)


def test_empty_wav_loads_as_no_samples(tmp_path):
    path = write_audio(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 22050)
    assert load_audio(path, 16000).shape == (0,)


def test_bad_sample_rate_is_rejected(tmp_path):
    path = write_audio(tmp_path / "a.wav", np.zeros(10, np.float32), RATE)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        load_audio(path, 0)


def test_save_wav_writes_16_bit_pcm_atomically_and_clips(tmp_path):
    path = tmp_path / "new" / "dir" / "out.wav"
    samples = np.array([0.0, 0.5, -0.5, 2.0, -2.0], np.float32)
    save_wav(path, samples, 12000)
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (12000, 1, 5, "PCM_16")
    written, _ = soundfile.read(str(path), dtype="int16")
    assert written.tolist() == [0, 16384, -16384, 32767, -32767]
    assert os.listdir(path.parent) == ["out.wav"]  # no temporary file left behind
    np.testing.assert_allclose(load_audio(path, 12000), np.clip(samples, -1, 1), atol=1e-4)


def test_save_wav_rejects_non_finite_samples(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        save_wav(tmp_path / "x.wav", np.array([0.0, np.nan], np.float32), 16000)
    assert not os.path.exists(tmp_path / "x.wav")


def test_demo_flac_loads():
    path = os.path.join(ROOT, "data", "demo", "audio", "piano", "0001-00501.flac")
    audio = load_audio(path, 16000)
    assert audio.shape == (soundfile.info(path).frames,)
    assert 0.01 < np.sqrt(np.mean(audio ** 2)) < 1.0


def _write_bytes(path, content):
    path.write_bytes(content)
    return str(path)


def _truncated(path, fraction):
    """A file like `path` holding 1 s of tone, cut to `fraction` of its bytes."""
    full = write_audio(path.with_name("full" + path.suffix), sine(440, RATE, RATE), RATE)
    with open(full, "rb") as f:
        content = f.read()
    return _write_bytes(path, content[:int(len(content) * fraction)])
