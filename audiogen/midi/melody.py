"""Monophonic melodies and NoteSequences: `Melody` / `MelodyStats`, extraction, and the way back.

This module owns the note-seq side of melodies: `extract_melodies` reads the melodies of a
NoteSequence, `melody_to_note_sequence` turns classes back into one. The 90-class encoding itself
is `audiogen.midi.encoding`; cutting melodies into training slices is `audiogen.midi.slicing`.

Extraction rules (`extract_melodies`):

1. The NoteSequence is split at every tempo and time-signature change (events at the same time
   are merged first, the last one wins). A segment without a time signature is 4/4, as in MIDI.
2. Only segments in a meter the `MeterRule` accepts are kept (by default those whose bar is 16
   sixteenth steps: 4/4, 2/2, ...; see `audiogen.midi.meters`); the others are counted per meter
   in `MelodyStats.rejected_meters`. Kept segments are quantized at 4 steps per quarter, with
   bar lines of the segment's meter (every 16 steps in 4/4, 8 in 2/4, 12 in 6/8) counted from
   the start of the segment.
3. Per instrument (NoteSequence `instrument`, i.e. pretty_midi track): drum notes and notes with
   velocity 0 are skipped; notes whose pitch lies outside 21..108 are DROPPED (removed before the
   monophonic reduction, as if they were never played; the rest of the melody is kept).
4. Monophonic reduction: on simultaneous onsets the highest note wins; a later onset ends the
   note sounding before it.
5. A rest of at least one bar (`gap_bars` bars of the segment's meter) between the end of a
   note and the next onset ends the melody. A melody starts at the bar line at or before its
   first note and is padded with `NO_EVENT` to a whole number of bars (a note ending exactly on
   the last bar line gets no `NOTE_OFF`, it simply lasts to the end).

The extraction is written here rather than with `note_seq.Melody.from_quantized_sequence`: that
method keeps out-of-range pitches, and searching again from the bar line before the end of the
previous melody (as Magenta's pipeline does) re-reads the lower notes of a final chord as a new
one-bar melody.

Reference: Roberts et al., "A Hierarchical Latent Vector Model for Learning Long-Term Structure
in Music", ICML 2018 (2-bar and 16-bar melody slices, 90-class encoding).
"""
import dataclasses
import warnings

import numpy as np

with warnings.catch_warnings():  # note_seq imports pydub, which warns about a missing ffmpeg
    warnings.simplefilter("ignore")
    import note_seq
    from note_seq import music_pb2, sequences_lib

from audiogen.midi.encoding import (
    DEFAULT_QPM, DEFAULT_VELOCITY, FIRST_PITCH_CLASS, GAP_BARS, MAX_PITCH, MIN_PITCH, NO_EVENT,
    NOTE_OFF, STEPS_PER_BAR, STEPS_PER_QUARTER, classes_to_notes, validate_classes)
from audiogen.midi.meters import MeterRule, bar_steps, meter_name


# === Data ===

@dataclasses.dataclass(frozen=True)
class Melody:
    """One monophonic melody extracted from a NoteSequence.

    Args:
        classes: int32 `[num_steps]`, a whole number of bars of its meter.
        instrument: NoteSequence instrument (pretty_midi track index) it came from.
        program: MIDI program of its first note.
        segment: index of the tempo/time-signature segment of the source.
        start_step: first step, counted from the start of the segment (a bar line).
        segment_start_time: start of the segment in the source, seconds.
        qpm: tempo of the segment.
        meter: time signature of the segment, e.g. "6/8".
        steps_per_bar: steps in a bar of that meter (16 in 4/4, 12 in 6/8).
    """
    classes: np.ndarray
    instrument: int = 0
    program: int = 0
    segment: int = 0
    start_step: int = 0
    segment_start_time: float = 0.0
    qpm: float = DEFAULT_QPM
    meter: str = "4/4"
    steps_per_bar: int = STEPS_PER_BAR

    @property
    def start_bar(self):
        """First bar (of the segment's meter) within the segment, 0-based."""
        return self.start_step // self.steps_per_bar

    @property
    def num_bars(self):
        return len(self.classes) // self.steps_per_bar

    @property
    def seconds_per_step(self):
        return 60.0 / (self.qpm * STEPS_PER_QUARTER)

    @property
    def start_time(self):
        """Start of the melody in the source, seconds."""
        return self.segment_start_time + self.start_step * self.seconds_per_step


@dataclasses.dataclass
class MelodyStats:
    """What `extract_melodies` saw and skipped in one NoteSequence."""
    segments: int = 0
    segments_used: int = 0         # in a meter the rule accepts
    segments_other_meter: int = 0
    segments_unquantizable: int = 0
    drum_notes: int = 0
    out_of_range_notes: int = 0
    polyphonic_notes: int = 0      # lower notes dropped on simultaneous onsets
    melodies: int = 0
    meters: dict = dataclasses.field(default_factory=dict)   # "3/4" -> number of segments
    rejected_meters: dict = dataclasses.field(default_factory=dict)  # the same, not accepted
    rule: str = MeterRule().describe()                       # the meters accepted


# === Extraction ===

def _dedupe_time_changes(sequence):
    """A copy where several tempos (or time signatures) at the same time collapse to the last."""
    def last_per_time(events):
        by_time = {}
        for event in events:
            by_time[round(event.time, 6)] = event
        return [by_time[t] for t in sorted(by_time)]

    if (len({round(t.time, 6) for t in sequence.tempos}) == len(sequence.tempos) and
            len({round(t.time, 6) for t in sequence.time_signatures}) ==
            len(sequence.time_signatures)):
        return sequence
    copy = music_pb2.NoteSequence()
    copy.CopyFrom(sequence)
    tempos = last_per_time(list(sequence.tempos))
    signatures = last_per_time(list(sequence.time_signatures))
    del copy.tempos[:]
    del copy.time_signatures[:]
    for tempo in tempos:
        copy.tempos.add().CopyFrom(tempo)
    for signature in signatures:
        copy.time_signatures.add().CopyFrom(signature)
    return copy


def split_segments(sequence):
    """Split an unquantized NoteSequence at tempo and time-signature changes.

    Returns a list of NoteSequences, each shifted to start at 0, with
    `subsequence_info.start_time_offset` holding its start in `sequence`.
    """
    if not sequence.notes:
        return []
    sequence = _dedupe_time_changes(sequence)
    changes = [e for e in list(sequence.tempos) + list(sequence.time_signatures)
               if 0 < e.time < sequence.total_time]
    if not changes:
        return [sequence]
    return sequences_lib.split_note_sequence_on_time_changes(sequence)


def segment_meter(segment):
    """(numerator, denominator) of a segment; 4/4 when it has no time signature."""
    if not segment.time_signatures:
        return 4, 4
    first = min(segment.time_signatures, key=lambda ts: ts.time)
    return first.numerator, first.denominator


def segment_qpm(segment):
    if not segment.tempos:
        return DEFAULT_QPM
    return min(segment.tempos, key=lambda t: t.time).qpm


def melodies_from_quantized(quantized, gap_bars=GAP_BARS, segment=0, segment_start_time=0.0,
                            stats=None):
    """Monophonic melodies of a NoteSequence quantized at 4 steps per quarter, in its meter.

    See the module docstring for the rules. Returns a list of `Melody`, ordered by start step
    then instrument.
    """
    stats = stats if stats is not None else MelodyStats()
    qpm = segment_qpm(quantized)
    meter = segment_meter(quantized)
    bar = bar_steps(*meter)
    gap = int(gap_bars * bar)
    by_instrument = _pitched_notes_by_instrument(quantized, stats)
    melodies = []
    for instrument in sorted(by_instrument):
        for group in _split_at_rests(_monophonic(by_instrument[instrument], stats), gap):
            melodies.append(Melody(
                classes=_encode_notes(group, bar), instrument=instrument, program=group[0][3],
                segment=segment, start_step=group[0][1] - group[0][1] % bar,
                segment_start_time=segment_start_time, qpm=qpm, meter=meter_name(*meter),
                steps_per_bar=bar))
    melodies.sort(key=lambda m: (m.start_step, m.instrument))
    stats.melodies += len(melodies)
    return melodies


def _pitched_notes_by_instrument(quantized, stats):
    """Rule 3: `{instrument: [notes]}` without drums, silent notes and pitches outside 21..108."""
    by_instrument = {}
    for note in quantized.notes:
        if note.is_drum:
            stats.drum_notes += 1
            continue
        if not note.velocity:
            continue
        if not MIN_PITCH <= note.pitch <= MAX_PITCH:
            stats.out_of_range_notes += 1
            continue
        by_instrument.setdefault(note.instrument, []).append(note)
    return by_instrument


def _monophonic(notes, stats):
    """Rule 4: `[[pitch, start, end, program]]` of one instrument's notes, non-overlapping."""
    notes = sorted(notes, key=lambda n: (n.quantized_start_step, -n.pitch))
    mono = []
    for note in notes:
        start = note.quantized_start_step
        end = max(note.quantized_end_step, start + 1)
        if mono and start == mono[-1][1]:
            stats.polyphonic_notes += 1       # a higher note already starts here
            continue
        if mono and mono[-1][2] > start:
            mono[-1][2] = start               # the later onset ends the sounding note
        mono.append([note.pitch, start, end, note.program])
    return mono


def _split_at_rests(mono, gap):
    """Rule 5: the monophonic notes cut into groups wherever a rest lasts `gap` steps or more."""
    groups, current = [], []
    for item in mono:
        if current and item[1] - current[-1][2] >= gap:
            groups.append(current)
            current = []
        current.append(item)
    if current:
        groups.append(current)
    return groups


def _encode_notes(notes, bar):
    """Classes of monophonic, non-overlapping [pitch, start, end, ...] notes, aligned on bars of
    `bar` steps."""
    origin = notes[0][1] - notes[0][1] % bar
    last_end = notes[-1][2] - origin
    length = -(-last_end // bar) * bar
    classes = np.full(length, NO_EVENT, np.int32)
    for _, start, end, *_ in notes:
        if end - origin < length:
            classes[end - origin] = NOTE_OFF
    for pitch, start, *_ in notes:
        classes[start - origin] = FIRST_PITCH_CLASS + pitch - MIN_PITCH
    return classes


def extract_melodies(sequence, gap_bars=GAP_BARS, meters=None):
    """Melodies of an unquantized NoteSequence (e.g. read from MIDI).

    `meters`: the meters used, a `MeterRule` or its setting (None: bars of 16 steps; a list such
    as `["2/4", "6/8"]` adds those; "any"). Returns `(melodies, stats)`: a list of `Melody` in
    the order of the source (segment, start, instrument) and a `MelodyStats`.
    """
    rule = MeterRule.from_setting(meters)
    stats = MelodyStats(rule=rule.describe())
    melodies = []
    for index, segment in enumerate(split_segments(sequence)):
        stats.segments += 1
        meter = segment_meter(segment)
        key = meter_name(*meter)
        stats.meters[key] = stats.meters.get(key, 0) + 1
        if not rule.accepts(*meter):
            stats.segments_other_meter += 1
            stats.rejected_meters[key] = stats.rejected_meters.get(key, 0) + 1
            continue
        stats.segments_used += 1
        try:
            quantized = sequences_lib.quantize_note_sequence(segment, STEPS_PER_QUARTER)
        except (sequences_lib.QuantizationStatusError, sequences_lib.MultipleTempoError,
                sequences_lib.MultipleTimeSignatureError, sequences_lib.BadTimeSignatureError,
                sequences_lib.NegativeTimeError, ValueError):
            stats.segments_unquantizable += 1
            continue
        melodies += melodies_from_quantized(
            quantized, gap_bars=gap_bars, segment=index,
            segment_start_time=segment.subsequence_info.start_time_offset, stats=stats)
    return melodies, stats


# === Back to notes ===

def melody_to_note_sequence(classes, qpm=DEFAULT_QPM, velocity=DEFAULT_VELOCITY, program=0,
                            instrument=0, gap_bars=0, time_signature=(4, 4), markers=None):
    """A NoteSequence of one melody, or of several played one after another.

    Args:
        classes: int `[num_steps]` melody, or a list / 2-D array of melodies, which are
            concatenated (each starts where the previous one ends, plus `gap_bars` 16-step bars
            of rest; a note still sounding at the end of a melody stops there).
        qpm: tempo, quarter notes per minute (a step is a sixteenth note); or a list with one
            tempo per melody (a tempo change where a melody starts with another tempo).
        program: MIDI program 0..127, or a list with one per melody (each program after the
            first gets its own instrument, i.e. track: note-seq writes one program per
            instrument).
        time_signature: `(numerator, denominator)` written at the start.
        markers: None, or one text per melody, kept as a `text_annotation` at the melody's start
            (`audiogen.midi.files.write_midi` writes them as MIDI markers).
    """
    melodies = _as_melody_list(classes)
    qpms = _per_melody(qpm, len(melodies), "qpm")
    programs = _per_melody(program, len(melodies), "program")
    texts = _per_melody(markers, len(melodies), "markers") if markers is not None else None
    if any(q <= 0 for q in qpms):
        raise ValueError(f"qpm must be positive, got {qpm}")
    if any(not 0 <= p <= 127 for p in programs):
        raise ValueError(f"program must be a MIDI program in 0..127, got {program}")
    sequence = music_pb2.NoteSequence()
    sequence.ticks_per_quarter = note_seq.STANDARD_PPQ
    sequence.time_signatures.add(time=0.0, numerator=time_signature[0],
                                 denominator=time_signature[1])
    tracks = {p: instrument + k for k, p in enumerate(dict.fromkeys(programs))}
    time = 0.0
    for index, melody in enumerate(melodies):
        melody = validate_classes(melody)
        seconds_per_step = 60.0 / (qpms[index] * STEPS_PER_QUARTER)
        if index == 0 or qpms[index] != qpms[index - 1]:
            sequence.tempos.add(time=time, qpm=qpms[index])
        if texts is not None:
            sequence.text_annotations.add(time=time, text=str(texts[index]))
        for pitch, start, end in classes_to_notes(melody):
            sequence.notes.add(pitch=pitch, velocity=velocity, program=int(programs[index]),
                               instrument=tracks[programs[index]],
                               start_time=time + start * seconds_per_step,
                               end_time=time + end * seconds_per_step)
        time += (len(melody) + int(gap_bars * STEPS_PER_BAR)) * seconds_per_step
    sequence.total_time = max([n.end_time for n in sequence.notes], default=0.0)
    return sequence


def _as_melody_list(classes):
    if isinstance(classes, np.ndarray) and classes.ndim == 1:
        return [classes]
    if isinstance(classes, np.ndarray) and classes.ndim == 2:
        return list(classes)
    if isinstance(classes, (list, tuple)) and classes and not np.isscalar(classes[0]):
        return list(classes)
    return [np.asarray(classes)]


def _per_melody(value, count, name):
    """`value` repeated `count` times, or the list itself when it has one entry per melody."""
    if isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, str):
        if len(value) != count:
            raise ValueError(f"{name}: {len(value)} values for {count} melodies")
        return list(value)
    return [value] * count
