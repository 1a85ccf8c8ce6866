"""Attribute measures of melodies on hand-made melodies (audiogen.midi.attributes)."""
import math

import numpy as np
import pytest

from audiogen.midi import attributes
from audiogen.midi.attributes import ATTRIBUTES, mean_pitch, measure, measure_all, \
    note_density, pitch_range, rest_fraction, sounding, syncopation
from audiogen.midi.encoding import NO_EVENT as H, NOTE_OFF as OFF, pitch_to_class


def n(pitch):
    return pitch_to_class(pitch)


C4, E4, G4, C5 = n(60), n(64), n(67), n(72)
# One 4/4 bar of quarter notes C E G C, each held 4 steps.
QUARTERS = [C4, H, H, H, E4, H, H, H, G4, H, H, H, C5, H, H, H]
# Two bars: eighth notes C4 with an eighth rest after each (note-off), then a silent bar.
EIGHTHS_THEN_SILENCE = [C4, H, OFF, H] * 4 + [OFF] + [H] * 15
# Every onset a sixteenth after the beat or its eighth: all on odd steps.
LATE = [H, C4, H, E4] * 4
SILENT = [H] * 8 + [OFF] + [H] * 7


def test_note_density_is_onsets_per_16_steps():
    assert note_density(QUARTERS) == 4.0
    assert note_density(EIGHTHS_THEN_SILENCE) == 2.0    # 4 onsets in 32 steps
    assert note_density(LATE) == 8.0
    assert note_density(SILENT) == 0.0
    # A 3/4 bar (12 steps) of eighths: 6 onsets in 12 steps is 8 per 16 steps.
    assert note_density([C4, H] * 6) == 8.0


def test_pitch_range_in_semitones():
    assert pitch_range(QUARTERS) == 12.0
    assert pitch_range(EIGHTHS_THEN_SILENCE) == 0.0
    assert pitch_range(LATE) == 4.0
    assert pitch_range([n(21), n(108)] + [H] * 14) == 87.0
    assert math.isnan(pitch_range(SILENT))


def test_mean_pitch_counts_each_note_once():
    assert mean_pitch(QUARTERS) == pytest.approx((60 + 64 + 67 + 72) / 4)
    # A long C and a short G weigh the same.
    assert mean_pitch([C4] + [H] * 13 + [G4, H]) == pytest.approx(63.5)
    assert math.isnan(mean_pitch(SILENT))


def test_syncopation_is_the_share_of_onsets_on_odd_sixteenths():
    assert syncopation(QUARTERS) == 0.0
    assert syncopation(EIGHTHS_THEN_SILENCE) == 0.0
    assert syncopation(LATE) == 1.0
    # Two of four onsets on odd steps (1 and 7), two on the grid (0 and 8).
    assert syncopation([C4, E4, H, H, H, H, H, G4, C5] + [H] * 7) == 0.5
    assert math.isnan(syncopation(SILENT))


def test_rest_fraction_follows_note_offs_and_the_silent_start():
    assert rest_fraction(QUARTERS) == 0.0
    # Each eighth note sounds 2 of 4 steps in bar 1; bar 2 is silent: 8 of 32 steps sound.
    assert rest_fraction(EIGHTHS_THEN_SILENCE) == pytest.approx(24 / 32)
    assert rest_fraction(LATE) == pytest.approx(1 / 16)    # only step 0, before the first note
    assert rest_fraction(SILENT) == 1.0
    np.testing.assert_array_equal(sounding([H, C4, H, OFF, H, E4]),
                                  [False, True, True, False, False, True])


def test_a_batch_gives_one_value_per_melody():
    batch = np.array([QUARTERS, LATE, SILENT], np.int64)
    values = measure_all(batch)
    assert list(values) == list(ATTRIBUTES)
    for name, value in values.items():
        assert value.shape == (3,) and value.dtype == np.float64, name
        for row, melody in zip(value, batch):
            single = ATTRIBUTES[name](melody)
            assert isinstance(single, float)
            assert (math.isnan(row) and math.isnan(single)) or row == single, name
    np.testing.assert_array_equal(values["note_density"], [4.0, 8.0, 0.0])


def test_bad_input_and_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="0..89"):
        note_density([0, 90])
    with pytest.raises(ValueError, match="shape"):
        note_density(np.zeros((2, 2, 2), np.int32))
    with pytest.raises(ValueError, match="shape"):
        note_density([])
    with pytest.raises(ValueError, match="integers"):
        note_density([0.5, 1])
    with pytest.raises(ValueError, match="'loudness'.*note_density, pitch_range"):
        measure("loudness", QUARTERS)
    assert measure("pitch_range", QUARTERS) == 12.0
    assert set(attributes.UNITS) == set(ATTRIBUTES)
