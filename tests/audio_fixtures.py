"""Tiny audio files for tests, written with soundfile."""
import os

import numpy as np
import soundfile

# soundfile (format, subtype) for each file extension used in tests.
FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


def sine(freq, sample_rate, num_samples, amplitude=0.5):
    """`float32 [num_samples]`: a sine of `freq` Hz."""
    t = np.arange(num_samples) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(path, samples, sample_rate, subtype=None, file_format=None):
    """Write `samples` (`[n]` or `[n, channels]`; float in [-1, 1], or int16 for PCM_16) to
    `path`; format and subtype follow the extension unless given. Returns the path as str."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    default_format, default_subtype = FORMATS[os.path.splitext(path)[1].lower()]
    soundfile.write(path, samples, sample_rate, format=file_format or default_format,
                    subtype=subtype or default_subtype)
    return path


def write_positions(path, first_value, num_samples, sample_rate):
    """16-bit WAV whose sample k holds the integer `first_value + k` (so that, decoded as
    `k / 32768` and quantized linearly with 65537 levels, its level is `32768 + first_value + k`).
    """
    values = first_value + np.arange(num_samples)
    if num_samples and not (-32768 <= values.min() and values.max() <= 32767):
        raise ValueError(f"positions {first_value}..{values.max()} do not fit in 16 bits")
    return write_audio(path, values.astype(np.int16), sample_rate, subtype="PCM_16")


def peak_frequency(samples, sample_rate):
    """The frequency (Hz) of the largest FFT magnitude of `samples` (Hann-windowed)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.argmax(spectrum) * sample_rate / len(samples)
