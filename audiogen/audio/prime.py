"""Priming audio for SampleRNN generation (`--seed` on the command line): an excerpt of a file,
quantized."""
import numpy as np

from audiogen.audio.io import load_audio
from audiogen.audio.quantize import quantize


def parse_offset(text, sample_rate):
    """The prime's start (`--seed_offset`) in samples: `16000` is samples, `1.5s` is seconds."""
    text = str(text).strip()
    try:
        if text.endswith("s"):
            samples = int(round(float(text[:-1]) * sample_rate))
        else:
            samples = int(text)
    except ValueError:
        raise ValueError(f"--seed_offset {text!r}: expected samples (e.g. 16000) or seconds "
                         f"with an s suffix (e.g. 1.5s)") from None
    if samples < 0:
        raise ValueError(f"--seed_offset {text!r} must not be negative")
    return samples


def load_prime_levels(path, offset, sample_rate, num_samples, q_type, q_levels):
    """`int32 [num_samples]` levels of `path` from sample `offset` (at `sample_rate`).

    Raises ValueError naming the file when the offset leaves no audio.
    """
    audio = load_audio(path, sample_rate)
    if offset >= len(audio):
        raise ValueError(f"{path}: --seed_offset {offset} samples is past the end of the file "
                         f"({len(audio)} samples at {sample_rate} Hz)")
    excerpt = np.asarray(audio[offset:offset + num_samples], np.float32)
    return np.asarray(quantize(excerpt, q_type, q_levels), np.int32)
