"""Reading and writing audio: probe headers, decode with tensorflow-io, mix to mono, resample.

`probe_audio` reads a file's header (with soundfile) and tells which tensorflow-io decoder can
read it; `decode_audio` is the graph-mode decoder used inside `tf.data.Dataset.map`;
`load_audio` and `save_wav` are the eager, NumPy-facing helpers.

Supported: `.wav` (16/24/32-bit PCM, 8-bit unsigned PCM, 32-bit float), `.flac` (8/16/24-bit),
`.ogg` (Vorbis) and `.mp3` (extensions are case-insensitive; the decoder follows the detected
container, not the extension). Not supported by tensorflow-io 0.37, hence reported by
`probe_audio`: 64-bit float WAV, compressed WAV (u-law, A-law, ADPCM, GSM), Ogg Opus.
"""
import dataclasses
import os

import numpy as np
import soundfile
import tensorflow as tf
import tensorflow_io as tfio
from tensorflow_io.python.ops import core_ops

from audiogen.files import atomic_path

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")

# (container, subtype) -> decoder index, the `format_id` given to `decode_audio`. The order of
# this tuple is the order of the `tf.switch_case` branches in `_decode_branches`.
DECODERS = (
    ("wav", "PCM_16"),
    ("wav", "PCM_24"),
    ("wav", "PCM_32"),
    ("wav", "FLOAT"),
    ("wav", "PCM_U8"),
    ("flac", "PCM_16"),
    ("flac", "PCM_24"),
    ("flac", "PCM_S8"),
    ("ogg", "VORBIS"),
    ("mp3", "MPEG_LAYER_III"),
)
FORMAT_IDS = {spec: i for i, spec in enumerate(DECODERS)}
# soundfile's container names -> ours ("WAVEX" is WAV with WAVE_FORMAT_EXTENSIBLE headers).
_CONTAINERS = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}


class UnsupportedAudioError(ValueError):
    """A file that cannot be decoded; the message names the file and the reason."""


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """Header facts of one audio file, as found by `probe_audio`.

    Args:
        path: `str`, the file.
        container: `str`, one of "wav", "flac", "ogg", "mp3".
        subtype: `str`, soundfile's sample encoding name (e.g. "PCM_16", "VORBIS").
        format_id: `int`, the decoder index for `decode_audio` (see `DECODERS`).
        sample_rate: `int`, the file's rate in Hz.
        channels: `int`.
        frames: `int`, samples per channel.
    """
    path: str
    container: str
    subtype: str
    format_id: int
    sample_rate: int
    channels: int
    frames: int

    def resampled_length(self, sample_rate):
        """Number of samples once resampled to `sample_rate` (what `decode_audio` returns)."""
        return resampled_length(self.frames, self.sample_rate, sample_rate)


def resampled_length(num_samples, rate_in, rate_out):
    """`ceil(num_samples * rate_out / rate_in)` in exact integer arithmetic."""
    return (int(num_samples) * int(rate_out) + int(rate_in) - 1) // int(rate_in)


def is_supported_path(path):
    """True when the file name ends in one of `SUPPORTED_EXTENSIONS` (any case)."""
    return os.path.splitext(os.fspath(path))[1].lower() in SUPPORTED_EXTENSIONS


def probe_audio(path):
    """Read the header of the audio file at `path` and pick its decoder.

    Returns an `AudioInfo`. Raises `UnsupportedAudioError` naming the file and the reason when it
    is missing, has an unsupported extension, cannot be parsed, uses a sample encoding that
    tensorflow-io cannot decode, or (WAV) is shorter than its header says.
    """
    path = os.fspath(path)
    if not is_supported_path(path):
        raise UnsupportedAudioError(
            f"{path}: unsupported file extension (expected one of {', '.join(SUPPORTED_EXTENSIONS)})")
    if not os.path.isfile(path):
        raise UnsupportedAudioError(f"{path}: no such file")
    try:
        header = soundfile.info(path)
    except Exception as e:  # soundfile raises several types for unreadable files
        raise UnsupportedAudioError(f"{path}: not a readable audio file ({_one_line(e)})") from None
    container = _CONTAINERS.get(header.format)
    if container is None:
        raise UnsupportedAudioError(f"{path}: unsupported container {header.format!r} "
                                    f"(supported: WAV, FLAC, OGG Vorbis, MP3)")
    format_id = FORMAT_IDS.get((container, header.subtype))
    if format_id is None:
        supported = ", ".join(sub for c, sub in DECODERS if c == container)
        raise UnsupportedAudioError(
            f"{path}: {container} sample encoding {header.subtype} cannot be decoded by "
            f"tensorflow-io (supported for {container}: {supported})")
    if header.samplerate <= 0 or header.channels <= 0:
        raise UnsupportedAudioError(f"{path}: invalid header (sample rate {header.samplerate}, "
                                    f"{header.channels} channels)")
    _COMPLETENESS_CHECKS[container](path, int(header.frames))
    return AudioInfo(path=path, container=container, subtype=header.subtype, format_id=format_id,
                     sample_rate=int(header.samplerate), channels=int(header.channels),
                     frames=max(int(header.frames), 0))


def decode_audio(contents, format_id, file_rate, sample_rate):
    """Decode encoded audio to mono float samples at `sample_rate`; works inside `tf.data`.

    Args:
        contents: `string` scalar tensor, the encoded file (e.g. from `tf.io.read_file`).
        format_id: `int32` scalar, the decoder index from `probe_audio(...).format_id`.
        file_rate: `int64` scalar, the file's sample rate in Hz.
        sample_rate: `int`, the rate wanted.
    Returns:
        `float32` tensor `[num_samples]` in `[-1, 1]`: channels averaged, resampled when
        `file_rate != sample_rate` to `ceil(frames * sample_rate / file_rate)` samples.
    """
    stereo = tf.switch_case(tf.cast(format_id, tf.int32), _decode_branches(contents))
    mono = tf.reduce_mean(stereo, axis=1)
    file_rate = tf.cast(file_rate, tf.int64)
    target = tf.constant(int(sample_rate), tf.int64)
    mono = tf.cond(tf.equal(file_rate, target),
                   lambda: mono,
                   lambda: resample(mono, file_rate, target))
    return tf.clip_by_value(mono, -1.0, 1.0)


def resample(samples, rate_in, rate_out):
    """Resample `[n]` float32 samples, compensating the resampler's delay and lost tail.

    `tfio.audio.resample` delays its output by its filter's latency (about 2 ms at 16 kHz) and
    drops the input's last samples; here the input is padded, the delay (measured on an impulse)
    cut off, and the result is `ceil(n * rate_out / rate_in)` samples aligned with the input.
    """
    rate_in = tf.cast(rate_in, tf.int64)
    rate_out = tf.cast(rate_out, tf.int64)
    n = tf.shape(samples, out_type=tf.int64)[0]
    out_len = (n * rate_out + rate_in - 1) // rate_in
    delay = _resampler_delay(rate_in, rate_out)
    pad_in = ((delay + 2) * rate_in + rate_out - 1) // rate_out + 2
    padded = tf.pad(samples, [[0, pad_in]])
    out = _resample_kernel(padded[:, None], rate_in, rate_out)[:, 0]
    return out[delay:delay + out_len]


def load_audio(path, sample_rate):
    """Decode the file at `path` to mono float32 samples `[num_samples]` at `sample_rate`.

    Raises `UnsupportedAudioError` (a ValueError) naming the file when it cannot be decoded.
    """
    sample_rate = _check_rate(sample_rate)
    info = probe_audio(path)
    contents = tf.io.read_file(info.path)
    try:
        samples = decode_audio(contents, info.format_id, info.sample_rate, sample_rate)
    except tf.errors.OpError as e:
        raise UnsupportedAudioError(f"{info.path}: decoding failed ({_one_line(e.message)})") from None
    return samples.numpy()


def save_wav(path, samples, sample_rate):
    """Write float samples `[num_samples]` or `[num_samples, channels]` as 16-bit PCM WAV.

    Values are clipped to [-1, 1]. The parent directory is created; the file is written to a
    temporary name in the same directory and renamed, so readers never see a partial file.
    """
    sample_rate = _check_rate(sample_rate)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (1, 2):
        raise ValueError(f"save_wav({path}): samples must have shape [num_samples] or "
                         f"[num_samples, channels], got {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"save_wav({path}): samples contain NaN or infinite values")
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    path = os.fspath(path)
    with atomic_path(path, ".wav") as tmp:
        soundfile.write(tmp, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return path


# --- helpers ------------------------------------------------------------------------------------

def _decode_branches(contents):
    """One function per entry of `DECODERS`, each returning `float32 [samples, channels]`."""
    def wav(dtype):
        return tfio.audio.decode_wav(contents, dtype=dtype)

    def flac(dtype):
        return tfio.audio.decode_flac(contents, dtype=dtype)

    def from_unsigned8(x):
        return (tf.cast(x, tf.float32) - 128.0) / 128.0

    def scaled(x, full_scale):
        return tf.cast(x, tf.float32) / full_scale

    return [
        lambda: scaled(wav(tf.int16), 2.0 ** 15),
        # 24-bit PCM comes back left-aligned in int32.
        lambda: scaled(wav(tf.int32), 2.0 ** 31),
        # tensorflow-io returns 32-bit PCM as float32 bit patterns: reinterpret them.
        lambda: scaled(tf.bitcast(wav(tf.float32), tf.int32), 2.0 ** 31),
        lambda: wav(tf.float32),
        lambda: from_unsigned8(wav(tf.uint8)),
        lambda: scaled(flac(tf.int16), 2.0 ** 15),
        lambda: scaled(flac(tf.int32), 2.0 ** 31),
        # 8-bit FLAC comes back offset by 128 in uint8.
        lambda: from_unsigned8(flac(tf.uint8)),
        lambda: tfio.audio.decode_vorbis(contents),
        lambda: tfio.audio.decode_mp3(contents),
    ]


def _resample_kernel(samples, rate_in, rate_out):
    """`[n, channels]` -> `[floor(n * rate_out / rate_in), channels]`, the kernel behind
    `tfio.audio.resample` called directly: the public wrapper's `tf.vectorized_map` adds nothing
    for one signal and logs a warning each time it is traced."""
    return core_ops.io_audio_resample(samples, rate_in=rate_in, rate_out=rate_out)


def _resampler_delay(rate_in, rate_out):
    """`int64` scalar: output samples by which the resampler delays its input."""
    # The resampler's latency is under 40 samples at the lower of the two rates; an impulse at
    # index 0 comes out with its peak at the delay.
    ratio = (rate_in + rate_out - 1) // rate_out
    impulse_len = 2 * (48 + 48 * ratio)
    impulse = tf.one_hot(0, tf.cast(impulse_len, tf.int32), dtype=tf.float32)
    response = _resample_kernel(impulse[:, None], rate_in, rate_out)[:, 0]
    return tf.argmax(response, output_type=tf.int64)


# Truncated files: tensorflow-io fails on them (instead of decoding what is there), which would
# stop training mid-epoch, so `probe_audio` checks that each file's end is present.

def _check_wav_data_size(path, frames):
    """Raise `UnsupportedAudioError` when the data chunk runs past the end of the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        riff = f.read(12)
        if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
            raise UnsupportedAudioError(f"{path}: not a RIFF/WAVE file (tensorflow-io reads only "
                                        f"RIFF WAV; RF64 and other variants are unsupported)")
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk = f.read(8)
            chunk_size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                if offset + 8 + chunk_size > size:
                    raise UnsupportedAudioError(
                        f"{path}: truncated WAV (header declares {chunk_size} bytes of audio, "
                        f"the file holds {size - offset - 8})")
                return
            offset += 8 + chunk_size + (chunk_size & 1)
    raise UnsupportedAudioError(f"{path}: WAV file has no data chunk")


def _check_last_frame_readable(path, frames):
    """Raise `UnsupportedAudioError` when the header's last sample cannot be read (FLAC, MP3)."""
    if frames <= 0:
        return
    try:
        with soundfile.SoundFile(path) as f:
            f.seek(frames - 1)
            complete = len(f.read(1)) == 1
    except Exception:  # libsndfile raises when seeking into missing data
        complete = False
    if not complete:
        raise UnsupportedAudioError(f"{path}: truncated file (the header announces {frames} "
                                    f"samples; the last ones are missing)")


def _check_ogg_last_page(path, frames):
    """Raise `UnsupportedAudioError` unless the file ends exactly where an Ogg page ends."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - _MAX_OGG_PAGE))
        tail = f.read()
    start = len(tail)
    while (start := tail.rfind(b"OggS", 0, start)) >= 0:
        segments = tail[start + 27:start + 27 + tail[start + 26]] if start + 27 <= len(tail) else b""
        if start + 27 + len(segments) + sum(segments) == len(tail):
            return
    raise UnsupportedAudioError(f"{path}: truncated Ogg file (its last page is incomplete)")


_MAX_OGG_PAGE = 27 + 255 + 255 * 255
_COMPLETENESS_CHECKS = {
    "wav": _check_wav_data_size,
    "flac": _check_last_frame_readable,
    "mp3": _check_last_frame_readable,
    "ogg": _check_ogg_last_page,
}


def _check_rate(sample_rate):
    ok = isinstance(sample_rate, (int, np.integer)) and not isinstance(sample_rate, bool)
    if not ok or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    return int(sample_rate)


def _one_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
