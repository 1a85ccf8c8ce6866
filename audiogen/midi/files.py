"""Single MIDI files: reading, writing, and the melodies and slices of one file.

Reading: `read_midi` (`MidiReadError` when the file cannot be parsed), `melodies_from_midi`,
`midi_to_slices`, `first_melody_slice`. Writing: `write_midi` (atomic: a temporary file, then
`os.replace`). Whole folders are `audiogen.midi.corpus`.

This module does not import TensorFlow (tensors are accepted through their `.numpy()`).
"""
import os
import warnings

import numpy as np

from audiogen.files import atomic_path
from audiogen.midi.encoding import DEFAULT_QPM, GAP_BARS, STEPS_PER_BAR, has_note_on
from audiogen.midi.melody import extract_melodies, melody_to_note_sequence
from audiogen.midi.rejections import no_melody_reason
from audiogen.midi.slicing import melody_slices, melody_windows

with warnings.catch_warnings():  # note_seq imports pydub, which warns about a missing ffmpeg
    warnings.simplefilter("ignore")
    import note_seq


class MidiReadError(ValueError):
    """A MIDI file that cannot be read or parsed."""


def read_midi(path):
    """NoteSequence of the MIDI file at `path` (MidiReadError when it cannot be parsed)."""
    path = os.fspath(path)
    try:
        return note_seq.midi_file_to_note_sequence(path)
    except Exception as e:  # pretty_midi/mido raise many types on bad data
        raise MidiReadError(f"{path}: cannot parse MIDI ({type(e).__name__}: {e})") from None


def melodies_from_midi(path, gap_bars=GAP_BARS):
    """The monophonic melodies (`audiogen.midi.melody.Melody`) of a MIDI file, in source order.

    See `audiogen.midi.melody` for the rules. Raises MidiReadError when the file can't be parsed.
    """
    melodies, _ = extract_melodies(read_midi(path), gap_bars=gap_bars)
    return melodies


def midi_to_slices(path, slice_bar):
    """All unique `slice_bar`-bar slices (1-bar hop, at least one note-on) of a MIDI file.

    Returns int32 `[num_slices, slice_bar * 16]` (possibly empty).
    """
    slices, _ = melody_slices(melodies_from_midi(path), slice_bar)
    return slices


def write_midi(classes_or_list, path, qpm=DEFAULT_QPM, **kwargs):
    """Write one melody, or several one after another, as a MIDI file (atomically).

    Args:
        classes_or_list: int `[num_steps]` classes, or a list / `[n, num_steps]` array of them.
        path: output `.mid` path; parent folders are created.
        qpm: tempo. Other keyword arguments go to `melody_to_note_sequence` (velocity, program,
            instrument, gap_bars).
    Returns the path.
    """
    path = os.fspath(path)
    sequence = melody_to_note_sequence(_to_numpy(classes_or_list), qpm=qpm, **kwargs)
    with atomic_path(path, ".mid") as tmp:
        note_seq.note_sequence_to_midi_file(sequence, tmp)
    return path


def _to_numpy(x):
    if hasattr(x, "numpy"):
        x = x.numpy()
    if isinstance(x, (list, tuple)):
        return [_to_numpy(v) if not np.isscalar(v) else v for v in x]
    return x


def first_melody_slice(path, num_steps):
    """The first usable `num_steps`-step slice of a MIDI file, for reconstruction/interpolation.

    Melodies are searched in source order (segment, start, instrument) and windows with a 1-bar
    hop; the first window holding a note-on wins. Returns `(classes int32 [num_steps], message)`
    where the message names the melody chosen. Raises ValueError naming the file and the reason
    when there is none (MidiReadError when it can't be parsed).
    """
    path = os.fspath(path)
    melodies, stats = extract_melodies(read_midi(path))
    if not melodies:
        raise ValueError(f"{path}: no melody to use: {no_melody_reason(stats)}")
    for index, melody in enumerate(melodies):
        windows = melody_windows(melody.classes, num_steps)
        for w, window in enumerate(windows):
            if has_note_on(window):
                bar = melody.start_bar + w + 1
                last_bar = melody.start_bar + w + -(-num_steps // STEPS_PER_BAR)
                message = (f"{path}: melody {index + 1} of {len(melodies)}: instrument "
                           f"{melody.instrument} (program {melody.program}), 4/4 segment "
                           f"{melody.segment} at {melody.segment_start_time:.2f} s, bars "
                           f"{bar}-{last_bar} of the segment ({num_steps} steps)")
                return window, message
    longest = max(len(m.classes) for m in melodies)
    raise ValueError(f"{path}: no melody of at least {num_steps} steps "
                     f"({num_steps / STEPS_PER_BAR:g} bars); {len(melodies)} melodies found, "
                     f"the longest has {longest} steps ({longest // STEPS_PER_BAR} bars)")
