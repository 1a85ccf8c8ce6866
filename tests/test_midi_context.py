"""What written melodies keep of their sources (audiogen.midi.context): tempo, program, meter,
and the markers of an interpolation file (audiogen.midi.markers), read back with note-seq,
pretty_midi and mido."""
import os

import mido
import numpy as np
import pretty_midi
import pytest

from audiogen.midi.context import interpolation_context, reconstruction_context, \
    sampled_context
from audiogen.midi.files import find_melody_slice, read_midi, write_midi
from audiogen.midi.markers import read_markers
from test_midi_meters import eighths


def test_a_source_window_round_trips_with_its_tempo_program_and_meter(tmp_path):
    path = eighths(tmp_path / "polka.mid", (2, 4), 24, qpm=90.0, program=41)
    source = find_melody_slice(path, 32, ["2/4"])
    assert (source.qpm, source.program, source.time_signature) == (90.0, 41, (2, 4))
    assert "90 qpm" in source.describe() and "program 41" in source.describe()
    out = write_midi(source.classes, tmp_path / "out.mid", **reconstruction_context(source))
    sequence = read_midi(out)
    assert [t.qpm for t in sequence.tempos] == pytest.approx([90.0], rel=1e-4)
    assert {n.program for n in sequence.notes} == {41}
    assert [(t.numerator, t.denominator) for t in sequence.time_signatures] == [(2, 4)]
    again = find_melody_slice(out, 32, ["2/4"])
    np.testing.assert_array_equal(again.classes, source.classes)
    # explicit values win
    out = write_midi(source.classes, tmp_path / "fast.mid",
                     **reconstruction_context(source, qpm=150.0, program=73))
    sequence = read_midi(out)
    assert sequence.tempos[0].qpm == pytest.approx(150.0, rel=1e-4)
    assert {n.program for n in sequence.notes} == {73}


def test_interpolation_context_moves_from_a_to_b(tmp_path):
    a = find_melody_slice(eighths(tmp_path / "a.mid", (2, 4), 24, qpm=80.0, program=40),
                          32, ["2/4"])
    b = find_melody_slice(eighths(tmp_path / "b.mid", (2, 4), 24, qpm=160.0, program=71),
                          32, ["2/4"])
    per_step, joined = interpolation_context(a, b, 5)
    assert [c["qpm"] for c in per_step] == pytest.approx([80, 100, 120, 140, 160])
    assert [c["program"] for c in per_step] == [40, 40, 71, 71, 71]
    assert {c["time_signature"] for c in per_step} == {(2, 4)}
    assert joined["markers"][0] == "step 1 of 5: t=0.00 (a.mid)"
    assert joined["markers"][-1] == "step 5 of 5: t=1.00 (b.mid)"
    per_step, joined = interpolation_context(a, b, 3, qpm=100.0, program=0)
    assert {c["qpm"] for c in per_step} == {100.0} and joined["program"] == [0, 0, 0]
    jig = find_melody_slice(eighths(tmp_path / "j.mid", (6, 8), 24), 32, ["6/8"])
    assert interpolation_context(a, jig, 2)[1]["time_signature"] == (4, 4)


def test_sampled_context_defaults_and_flags():
    assert sampled_context(2) == [dict(qpm=120.0, program=0, time_signature=(4, 4))] * 2
    assert sampled_context(1, 96.0, 24) == [dict(qpm=96.0, program=24, time_signature=(4, 4))]


def test_interpolation_file_has_a_marker_per_step(tmp_path):
    a = find_melody_slice(eighths(tmp_path / "a.mid", (4, 4), 16, qpm=60.0, program=40),
                          32, None)
    b = find_melody_slice(eighths(tmp_path / "b.mid", (4, 4), 16, qpm=120.0, program=71),
                          32, None)
    steps = [a.classes, b.classes, a.classes, b.classes]
    _, joined = interpolation_context(a, b, len(steps))
    path = write_midi(steps, tmp_path / "all.mid", **joined)
    assert sorted(os.listdir(tmp_path)) == ["a.mid", "all.mid", "b.mid"]    # nothing left over
    # each step lasts 32 sixteenths = 8 quarters at its own tempo: 60, 80, 100, 120 qpm
    starts = np.cumsum([0.0] + [8 * 60.0 / q for q in (60, 80, 100)])
    markers = read_markers(path)
    assert [text for _, text in markers] == joined["markers"]
    np.testing.assert_allclose([time for time, _ in markers], starts, atol=1e-3)
    assert sum(1 for m in mido.MidiFile(path).tracks[0] if m.type == "marker") == 4
    pm = pretty_midi.PrettyMIDI(path)
    tempo_times, tempi = pm.get_tempo_changes()
    np.testing.assert_allclose(tempi, [60, 80, 100, 120], rtol=1e-3)
    np.testing.assert_allclose(tempo_times, starts, atol=1e-3)
    assert sorted(i.program for i in pm.instruments) == [40, 71]
    onsets = sorted(n.start for i in pm.instruments for n in i.notes)
    assert len(onsets) == 4 * 16 and onsets[16] == pytest.approx(starts[1], abs=1e-3)
    sequence = read_midi(path)          # note-seq reads the file as usual
    assert len(sequence.notes) == 64 and len(sequence.tempos) == 4


def test_markers_need_one_text_per_melody(tmp_path):
    with pytest.raises(ValueError, match="markers: 1 values for 2 melodies"):
        write_midi([np.full(16, 41), np.full(16, 41)], tmp_path / "x.mid", markers=["a"])
    with pytest.raises(ValueError, match="program must be a MIDI program in 0..127"):
        write_midi(np.full(16, 41), tmp_path / "x.mid", program=128)
    assert not os.listdir(tmp_path)
