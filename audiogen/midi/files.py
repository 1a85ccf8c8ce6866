"""Single MIDI files: reading, writing, and the melodies and slices of one file.

Reading: `read_midi` (`MidiReadError` when the file cannot be parsed), `melodies_from_midi`,
`midi_to_slices`, and `find_melody_slice` / `first_melody_slice`: the window reconstruction and
interpolation use, with the tempo, program and meter of its source (`SourceSlice`). Writing:
`write_midi` (atomic: a temporary file, then `os.replace`; markers through
`audiogen.midi.markers`). Whole folders are `audiogen.midi.corpus`.

This module does not import TensorFlow (tensors are accepted through their `.numpy()`).
"""
import dataclasses
import os
import warnings

import numpy as np

from audiogen.files import atomic_path
from audiogen.midi.encoding import DEFAULT_QPM, GAP_BARS, STEPS_PER_BAR, has_note_on
from audiogen.midi.markers import write_with_markers
from audiogen.midi.melody import Melody, extract_melodies, melody_to_note_sequence
from audiogen.midi.meters import MeterRule, describe_bars, parse_meter
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


def melodies_from_midi(path, gap_bars=GAP_BARS, meters=None):
    """The monophonic melodies (`audiogen.midi.melody.Melody`) of a MIDI file, in source order.

    See `audiogen.midi.melody` for the rules and `audiogen.midi.meters` for `meters`. Raises
    MidiReadError when the file can't be parsed.
    """
    melodies, _ = extract_melodies(read_midi(path), gap_bars=gap_bars, meters=meters)
    return melodies


def midi_to_slices(path, slice_bar, meters=None):
    """All unique `slice_bar * 16`-step slices (1-bar hop, at least one note-on) of a MIDI file.

    Returns int32 `[num_slices, slice_bar * 16]` (possibly empty).
    """
    slices, _ = melody_slices(melodies_from_midi(path, meters=meters), slice_bar)
    return slices


def write_midi(classes_or_list, path, qpm=DEFAULT_QPM, **kwargs):
    """Write one melody, or several one after another, as a MIDI file (atomically).

    Args:
        classes_or_list: int `[num_steps]` classes, or a list / `[n, num_steps]` array of them.
        path: output `.mid` path; parent folders are created.
        qpm: tempo, or one per melody. Other keyword arguments go to `melody_to_note_sequence`
            (velocity, program, instrument, gap_bars, time_signature, markers: one marker text
            per melody, written as a MIDI marker where the melody starts).
    Returns the path.
    """
    path = os.fspath(path)
    sequence = melody_to_note_sequence(_to_numpy(classes_or_list), qpm=qpm, **kwargs)
    with atomic_path(path, ".mid") as tmp:
        if sequence.text_annotations:
            write_with_markers(sequence, tmp,
                               [(a.time, a.text) for a in sequence.text_annotations])
        else:
            note_seq.note_sequence_to_midi_file(sequence, tmp)
    return path


def _to_numpy(x):
    if hasattr(x, "numpy"):
        x = x.numpy()
    if isinstance(x, (list, tuple)):
        return [_to_numpy(v) if not np.isscalar(v) else v for v in x]
    return x


@dataclasses.dataclass(frozen=True)
class SourceSlice:
    """The window of a MIDI file that reconstruction or interpolation uses, and its context.

    Args:
        path: the file.
        classes: int32 `[num_steps]`.
        melody: the `Melody` it was cut from (tempo, program, meter, segment).
        offset: first step of the window within the melody (a bar line of its meter).
        index: the melody's place among the file's melodies, 0-based; `count`: their number.
    """
    path: str
    classes: np.ndarray
    melody: Melody
    offset: int = 0
    index: int = 0
    count: int = 1

    @property
    def qpm(self):
        """The source's tempo to 0.001 qpm (MIDI holds whole microseconds per quarter, so a
        file written at 90 qpm reads back as 90.00009)."""
        return round(self.melody.qpm, 3)

    @property
    def program(self):
        return self.melody.program

    @property
    def time_signature(self):
        return parse_meter(self.melody.meter)

    @property
    def bars(self):
        """First and last bar of the segment's meter the window touches, 1-based."""
        first = self.melody.start_step + self.offset
        bar = self.melody.steps_per_bar
        return first // bar + 1, (first + len(self.classes) - 1) // bar + 1

    @property
    def times(self):
        """Start and end of the window in the file, seconds."""
        start = self.melody.start_time + self.offset * self.melody.seconds_per_step
        return start, start + len(self.classes) * self.melody.seconds_per_step

    def describe(self):
        m = self.melody
        (first, last), (start, end) = self.bars, self.times
        return (f"{self.path}: melody {self.index + 1} of {self.count}: instrument "
                f"{m.instrument} (program {m.program}), {m.meter} segment {m.segment} at "
                f"{m.segment_start_time:.2f} s, bars {first}-{last} of the segment "
                f"({len(self.classes)} steps = {describe_bars(len(self.classes), m.steps_per_bar)}"
                f" bars of {m.meter}; {start:.2f}-{end:.2f} s, {self.qpm:g} qpm)")


def find_melody_slice(path, num_steps, meters=None):
    """The first usable `num_steps`-step window of a MIDI file, for reconstruction/interpolation.

    Melodies in the meters `meters` uses (see `audiogen.midi.meters`) are searched in source
    order (segment, start, instrument), windows starting on each bar line of the melody's meter;
    the first window holding a note-on wins. Returns a `SourceSlice`. Raises ValueError naming
    the file and the reason when there is none (MidiReadError when it can't be parsed).
    """
    path = os.fspath(path)
    rule = MeterRule.from_setting(meters)
    melodies, stats = extract_melodies(read_midi(path), meters=rule)
    if not melodies:
        raise ValueError(f"{path}: no melody to use: {no_melody_reason(stats)}")
    for index, melody in enumerate(melodies):
        hop = melody.steps_per_bar
        for w, window in enumerate(melody_windows(melody.classes, num_steps, hop)):
            if has_note_on(window):
                return SourceSlice(path, window, melody, w * hop, index, len(melodies))
    longest = max(len(m.classes) for m in melodies)
    raise ValueError(f"{path}: no melody of at least {num_steps} steps "
                     f"({num_steps / STEPS_PER_BAR:g} bars of 16 steps); {len(melodies)} "
                     f"melodies found in {rule.describe()}, the longest has {longest} steps")


def first_melody_slice(path, num_steps, meters=None):
    """`(classes int32 [num_steps], message)` of `find_melody_slice`, the message naming the
    melody and the part of the file used."""
    found = find_melody_slice(path, num_steps, meters)
    return found.classes, found.describe()
