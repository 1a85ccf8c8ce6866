"""The encoding (audiogen.midi.encoding), extraction rules (audiogen.midi.melody) and slicing
(audiogen.midi.slicing) on hand-built NoteSequences."""
import numpy as np
import pytest

from audiogen.midi.encoding import FIRST_PITCH_CLASS, MAX_PITCH, MIN_PITCH, NO_EVENT, NOTE_OFF, \
    NUM_CLASSES, STEPS_PER_BAR, STEPS_PER_QUARTER, class_to_pitch, classes_to_notes, has_note_on, \
    pitch_to_class, validate_classes
from audiogen.midi.melody import extract_melodies, melody_to_note_sequence, music_pb2, note_seq
from audiogen.midi.slicing import melody_slices, melody_windows

STEP = 0.125  # seconds per sixteenth at 120 qpm


def make_sequence(notes, time_signatures=((0.0, 4, 4),), tempos=((0.0, 120.0),)):
    """notes: (pitch, start_step, end_step[, dict of NoteSequence.Note fields]) at 120 qpm."""
    seq = music_pb2.NoteSequence(ticks_per_quarter=220)
    for time, num, den in time_signatures:
        seq.time_signatures.add(time=time, numerator=num, denominator=den)
    for time, qpm in tempos:
        seq.tempos.add(time=time, qpm=qpm)
    for pitch, start, end, *extra in notes:
        fields = dict(velocity=80, instrument=0, program=0)
        fields.update(extra[0] if extra else {})
        seq.notes.add(pitch=pitch, start_time=start * STEP, end_time=end * STEP, **fields)
    seq.total_time = max((n.end_time for n in seq.notes), default=0.0)
    return seq


def c(pitch):
    return pitch_to_class(pitch)


def test_encoding_constants():
    assert (NO_EVENT, NOTE_OFF, FIRST_PITCH_CLASS) == (0, 1, 2)
    assert (MIN_PITCH, MAX_PITCH, NUM_CLASSES) == (21, 108, 90)
    assert STEPS_PER_BAR == 16 and STEPS_PER_QUARTER == 4
    assert c(21) == 2 and c(60) == 41 and c(108) == 89
    assert class_to_pitch(89) == 108
    for bad in (20, 109):
        with pytest.raises(ValueError):
            c(bad)
    with pytest.raises(ValueError):
        class_to_pitch(NOTE_OFF)
    with pytest.raises(ValueError, match="0..89"):
        validate_classes([0, 90])


def test_quantization_at_16_steps_per_bar():
    # quarter, eighth, sixteenth and a note slightly off the grid (snaps to the nearest step)
    seq = make_sequence([(60, 0, 4), (62, 4, 6), (64, 6, 7), (65, 8.1, 11.9)])
    (melody,), stats = extract_melodies(seq)
    expected = np.zeros(16, np.int32)
    expected[[0, 4, 6, 8]] = [c(60), c(62), c(64), c(65)]
    expected[7] = NOTE_OFF
    expected[12] = NOTE_OFF
    np.testing.assert_array_equal(melody.classes, expected)
    assert melody.classes.dtype == np.int32
    assert stats.segments == stats.segments_used == stats.melodies == 1


def test_quantization_follows_the_tempo():
    # at 60 qpm a quarter lasts 1 s: a note at 1 s is on step 4
    seq = make_sequence([], tempos=((0.0, 60.0),))
    seq.notes.add(pitch=60, start_time=0.0, end_time=1.0, velocity=80)
    seq.notes.add(pitch=62, start_time=1.0, end_time=2.0, velocity=80)
    seq.total_time = 2.0
    (melody,), _ = extract_melodies(seq)
    assert melody.qpm == 60.0
    np.testing.assert_array_equal(melody.classes[[0, 4, 8]], [c(60), c(62), NOTE_OFF])


def test_16_step_bars_kept_and_other_meters_rejected_by_default():
    notes = [(60 + i, 4 * i, 4 * i + 3) for i in range(8)]
    melodies, stats = extract_melodies(make_sequence(notes, time_signatures=((0, 3, 4),)))
    assert melodies == []
    assert stats.segments == 1 and stats.segments_used == 0 and stats.segments_other_meter == 1
    assert stats.meters == stats.rejected_meters == {"3/4": 1}
    melodies, stats = extract_melodies(make_sequence(notes))
    assert len(melodies) == 1 and stats.meters == {"4/4": 1} and stats.rejected_meters == {}
    for num, den in ((6, 8), (2, 4)):
        assert extract_melodies(make_sequence(notes, ((0, num, den),)))[0] == []
    (melody,), _ = extract_melodies(make_sequence(notes, ((0, 2, 2),)))   # a bar of 16 steps
    assert (melody.meter, melody.steps_per_bar, len(melody.classes)) == ("2/2", 16, 32)


def test_no_time_signature_means_4_4():
    melodies, stats = extract_melodies(make_sequence([(60, 0, 4)], time_signatures=()))
    assert len(melodies) == 1 and stats.segments_used == 1


def test_time_signature_change_keeps_only_the_4_4_part():
    # two bars of 3/4 (24 steps), then 4/4 from 3 s on
    notes = [(60, 0, 4), (62, 12, 16), (64, 24, 28), (65, 28, 32), (67, 40, 44)]
    seq = make_sequence(notes, time_signatures=((0.0, 3, 4), (3.0, 4, 4)))
    melodies, stats = extract_melodies(seq)
    assert stats.segments == 2 and stats.meters == {"3/4": 1, "4/4": 1}
    (melody,) = melodies
    assert melody.segment == 1 and melody.segment_start_time == pytest.approx(3.0)
    assert melody.start_step == 0 and melody.start_time == pytest.approx(3.0)
    np.testing.assert_array_equal(melody.classes[[0, 4, 8, 16, 20]],
                                  [c(64), c(65), NOTE_OFF, c(67), NOTE_OFF])


def test_tempo_change_splits_the_sequence():
    # 2 bars at 120 qpm (4 s), then 60 qpm: a sixteenth lasts 0.25 s
    seq = make_sequence([(60, 0, 4), (62, 16, 20)], tempos=((0.0, 120.0), (4.0, 60.0)))
    seq.notes.add(pitch=64, start_time=4.0, end_time=5.0, velocity=80)    # steps 0..4
    seq.notes.add(pitch=65, start_time=5.0, end_time=6.0, velocity=80)    # steps 4..8
    seq.total_time = 6.0
    melodies, stats = extract_melodies(seq)
    assert stats.segments == 2
    first, second = melodies
    assert (first.segment, first.qpm, second.segment, second.qpm) == (0, 120.0, 1, 60.0)
    np.testing.assert_array_equal(first.classes[[0, 4, 16, 20]],
                                  [c(60), NOTE_OFF, c(62), NOTE_OFF])
    np.testing.assert_array_equal(second.classes[[0, 4, 8]], [c(64), c(65), NOTE_OFF])
    assert second.start_time == pytest.approx(4.0)


def test_same_time_tempo_events_do_not_break_quantization():
    # two tempo events at 0 (the last one wins) would make note-seq raise MultipleTempoError
    seq = make_sequence([(60, 0, 4)], tempos=((0.0, 100.0), (0.0, 120.0)))
    (melody,), stats = extract_melodies(seq)
    assert melody.qpm == 120.0 and stats.segments_unquantizable == 0


def test_drums_are_skipped():
    notes = [(36, 0, 1, dict(is_drum=True, instrument=9)),
             (38, 4, 5, dict(is_drum=True, instrument=9)),
             (42, 2, 3, dict(is_drum=True)),               # a drum note inside instrument 0
             (60, 0, 8), (62, 8, 16)]
    (melody,), stats = extract_melodies(make_sequence(notes))
    assert stats.drum_notes == 3 and melody.instrument == 0
    expected = np.zeros(16, np.int32)
    expected[[0, 8]] = [c(60), c(62)]
    np.testing.assert_array_equal(melody.classes, expected)
    only_drums = make_sequence([(36, 4 * i, 4 * i + 1, dict(is_drum=True)) for i in range(8)])
    assert extract_melodies(only_drums)[0] == []


def test_highest_note_wins_on_simultaneous_onsets():
    notes = [(60, 0, 8), (67, 0, 4), (64, 0, 8),   # chord: 67 wins
             (55, 8, 12), (59, 8, 12),             # 59 wins
             (48, 10, 16)]                         # a later onset ends the sounding note
    (melody,), stats = extract_melodies(make_sequence(notes))
    expected = np.zeros(16, np.int32)
    expected[[0, 4, 8, 10]] = [c(67), NOTE_OFF, c(59), c(48)]
    np.testing.assert_array_equal(melody.classes, expected)
    assert stats.polyphonic_notes == 3


def test_final_chord_is_not_read_again_as_a_new_melody():
    # Magenta re-searches from the bar line before a melody's end and re-reads the chord's lower
    # notes as a one-bar melody; here the chord gives one note in one melody.
    notes = [(60, 0, 4), (72, 4, 8), (67, 4, 8), (64, 4, 8)]
    melodies, _ = extract_melodies(make_sequence(notes))
    assert len(melodies) == 1


def test_one_bar_gap_ends_a_melody():
    # note ends at 4, next starts at 20: 16 steps of silence = 1 bar -> two melodies
    (a, b), _ = extract_melodies(make_sequence([(60, 0, 4), (62, 20, 24)]))
    assert (a.start_step, len(a.classes), b.start_step, len(b.classes)) == (0, 16, 16, 16)
    assert b.start_bar == 1
    np.testing.assert_array_equal(b.classes[[4, 8]], [c(62), NOTE_OFF])
    # 15 steps of silence: one melody of 2 bars
    (m,), _ = extract_melodies(make_sequence([(60, 0, 4), (62, 19, 23)]))
    assert len(m.classes) == 32 and m.classes[19] == c(62)
    # a held note is not silence
    (m,), _ = extract_melodies(make_sequence([(60, 0, 30), (62, 34, 36)]))
    assert len(m.classes) == 48


def test_melody_starts_on_a_bar_line_and_ends_padded_to_a_bar():
    (m,), _ = extract_melodies(make_sequence([(60, 21, 24), (62, 24, 32)]))
    assert m.start_step == 16 and len(m.classes) == 16
    assert m.classes[5] == c(60) and m.classes[8] == c(62)
    assert m.classes[15] == NO_EVENT  # ends exactly on the bar line: no NOTE_OFF needed


def test_out_of_range_pitches_are_dropped():
    notes = [(20, 0, 4), (60, 4, 8), (109, 8, 12), (62, 12, 16), (110, 16, 24)]
    (m,), stats = extract_melodies(make_sequence(notes))
    assert stats.out_of_range_notes == 3
    expected = np.zeros(16, np.int32)
    expected[[4, 8, 12]] = [c(60), NOTE_OFF, c(62)]
    np.testing.assert_array_equal(m.classes, expected)
    # the dropped note leaves a gap: a highest note outside the range lets the next one win
    (m,), _ = extract_melodies(make_sequence([(60, 0, 4), (115, 0, 4)]))
    assert m.classes[0] == c(60)
    assert extract_melodies(make_sequence([(10, 0, 4), (120, 4, 8)]))[0] == []


def test_each_instrument_gives_its_own_melodies():
    notes = [(60, 0, 4, dict(instrument=1, program=40)), (72, 0, 4, dict(instrument=0)),
             (62, 4, 8, dict(instrument=1, program=40))]
    (a, b), _ = extract_melodies(make_sequence(notes))
    assert (a.instrument, b.instrument, b.program) == (0, 1, 40)
    assert a.classes[0] == c(72) and b.classes[0] == c(60) and b.classes[4] == c(62)


def test_zero_velocity_notes_are_ignored():
    (m,), _ = extract_melodies(make_sequence([(70, 0, 4, dict(velocity=0)), (60, 0, 4)]))
    assert m.classes[0] == c(60)


def test_agrees_with_note_seq_melody_on_a_simple_line():
    notes = [(60, 0, 3), (64, 4, 6), (67, 6, 12), (72, 12, 28), (71, 30, 31), (69, 32, 40)]
    seq = make_sequence(notes)
    (m,), _ = extract_melodies(seq)
    quantized = note_seq.quantize_note_sequence(seq, 4)
    reference = note_seq.Melody()
    reference.from_quantized_sequence(quantized, gap_bars=1, ignore_polyphonic_notes=True,
                                      pad_end=True)
    events = [NO_EVENT if e == note_seq.MELODY_NO_EVENT else
              NOTE_OFF if e == note_seq.MELODY_NOTE_OFF else c(e) for e in reference]
    np.testing.assert_array_equal(m.classes, events)


# === Slicing ===

def bar(pitch, hold=False):
    """One bar: a quarter note of `pitch` (or an all-hold bar)."""
    out = np.zeros(16, np.int32)
    if not hold:
        out[0], out[4] = c(pitch), NOTE_OFF
    return out


def test_windows_hop_one_bar_and_stay_inside():
    classes = np.concatenate([bar(60), bar(62), bar(64), bar(65)])
    windows = melody_windows(classes, 32)
    assert windows.shape == (3, 32) and windows.dtype == np.int32
    for i, window in enumerate(windows):
        np.testing.assert_array_equal(window, classes[16 * i:16 * i + 32])
    assert melody_windows(classes, 80).shape == (0, 80)


def test_slices_drop_duplicates_and_all_rest_windows():
    repeated = np.concatenate([bar(60), bar(62), bar(60), bar(62), bar(60)])
    slices, stats = melody_slices([repeated], slice_bar=2)
    assert stats.windows == 4 and stats.duplicates == 2 and len(slices) == 2
    np.testing.assert_array_equal(slices[0], repeated[:32])
    np.testing.assert_array_equal(slices[1], repeated[16:48])
    # a note held over bars 2-3 gives a window without note-on: dropped
    held = np.concatenate([bar(60), bar(0, hold=True), bar(0, hold=True), bar(64)])
    held[4] = NO_EVENT
    slices, stats = melody_slices([held], slice_bar=2)
    assert stats.silent == 1 and len(slices) == 2
    assert has_note_on(slices).all()
    # duplicates are found across melodies of a file too
    slices, stats = melody_slices([repeated[:32], repeated[32:64]], slice_bar=2)
    assert len(slices) == 1 and stats.duplicates == 1


def test_slices_from_extracted_melodies():
    notes = [(60 + (i % 5), 4 * i, 4 * i + 2) for i in range(16)]   # 4 bars
    melodies, _ = extract_melodies(make_sequence(notes))
    slices, stats = melody_slices(melodies, slice_bar=2)
    assert slices.shape == (3, 32) and stats.windows == 3


# === Back to notes ===

def test_classes_to_notes_and_note_sequence():
    classes = np.array([c(60), 0, 0, 0, c(62), 0, NOTE_OFF, 0, 0, c(62), 0, 0, c(64), 0, 0, 0])
    assert classes_to_notes(classes) == [(60, 0, 4), (62, 4, 6), (62, 9, 12), (64, 12, 16)]
    seq = melody_to_note_sequence(classes, qpm=60)
    assert seq.tempos[0].qpm == 60
    assert (seq.time_signatures[0].numerator, seq.time_signatures[0].denominator) == (4, 4)
    assert [(n.pitch, n.start_time, n.end_time) for n in seq.notes] == [
        (60, 0.0, 1.0), (62, 1.0, 1.5), (62, 2.25, 3.0), (64, 3.0, 4.0)]
    assert seq.total_time == 4.0
    # a list of melodies plays one after another
    seq = melody_to_note_sequence([classes, classes], qpm=120)
    assert len(seq.notes) == 8 and seq.notes[4].start_time == pytest.approx(2.0)
    # leading holds are rests
    assert classes_to_notes([0, 0, NOTE_OFF, c(60)]) == [(60, 3, 4)]
