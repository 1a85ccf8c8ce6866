"""Meters (audiogen.midi.meters): the `meters` setting, extraction and slicing in other meters,
the corpus report and cache under each rule, and the config key."""
import os

import numpy as np
import pytest

from audiogen.config import ConfigError, resolve_config
from audiogen.midi.corpus import extract_corpus
from audiogen.midi.encoding import FIRST_PITCH_CLASS, MIN_PITCH, NOTE_OFF, pitch_to_class
from audiogen.midi.files import find_melody_slice, melodies_from_midi, midi_to_slices
from audiogen.midi.melody import extract_melodies, music_pb2, note_seq
from audiogen.midi.meters import MeterRule, bar_steps, describe_bars, normalize_setting, \
    parse_meter
from audiogen.midi.rejections import REASON_NO_METER

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONEILLS = os.path.join(ROOT, "data", "demo", "midi", "oneills")
STEP = 0.125  # seconds per sixteenth at 120 qpm


def eighths(path, meter, count, first_pitch=50, qpm=120.0, program=0, rest_after=None, rest=0):
    """A tune of `count` eighth notes with rising pitches (so each window's first note tells
    where it starts), optionally a rest of `rest` steps after note `rest_after`."""
    seq = music_pb2.NoteSequence(ticks_per_quarter=220)
    seq.time_signatures.add(time=0, numerator=meter[0], denominator=meter[1])
    seq.tempos.add(time=0, qpm=qpm)
    step = 60.0 / qpm / 4
    start = 0
    for i in range(count):
        seq.notes.add(pitch=first_pitch + i, start_time=start * step,
                      end_time=(start + 2) * step, velocity=80, program=program)
        start += 2 + (rest if i == rest_after else 0)
    seq.total_time = max(n.end_time for n in seq.notes)
    note_seq.note_sequence_to_midi_file(seq, os.fspath(path))
    return os.fspath(path)


def first_pitches(slices):
    return [int(s[0]) - FIRST_PITCH_CLASS + MIN_PITCH for s in slices]


# === The setting ===

def test_meter_arithmetic_and_settings():
    assert [bar_steps(*m) for m in ((4, 4), (2, 2), (2, 4), (6, 8), (3, 4), (9, 8))] == \
        [16, 16, 8, 12, 12, 18]
    assert bar_steps(3, 32) is None and bar_steps(3, 3) is None
    assert parse_meter(" 6 / 8 ") == (6, 8)
    for bad, match in (("6-8", "not a time signature"), ("3/3", "power of 2"),
                       ("3/32", "3/2 sixteenth steps"), ("0/4", "positive numerator")):
        with pytest.raises(ValueError, match=match):
            parse_meter(bad)
    default = MeterRule.from_setting(None)
    assert default.accepts(4, 4) and default.accepts(2, 2) and default.accepts(8, 8)
    assert not default.accepts(2, 4) and not default.accepts(6, 8)
    extra = MeterRule.from_setting(["6/8", "2/4", "4/4"])
    assert extra.accepts(2, 4) and extra.accepts(6, 8) and extra.accepts(2, 2)
    assert not extra.accepts(3, 4) and extra.setting == ["2/4", "6/8"]
    assert MeterRule.from_setting("2/4, 6/8") == extra
    assert MeterRule.from_setting(["2/2"]) == default and default.setting is None
    anything = MeterRule.from_setting("any")
    assert anything.accepts(3, 4) and anything.accepts(9, 8) and not anything.accepts(3, 32)
    assert anything.setting == "any" and "any meter" in anything.describe()
    assert "4/4, 2/2" in default.describe() and "2/4, 6/8" in extra.describe()
    assert normalize_setting("2/4,6/8,2/4") == ["2/4", "6/8"]
    for bad in (5, ["any"], "", {"2/4": 1}):
        with pytest.raises(ValueError, match="'meters' must be null"):
            MeterRule.from_setting(bad)
    assert [describe_bars(32, b) for b in (8, 12, 16, 18)] == ["4", "2 2/3", "2", "1 7/9"]


def test_config_key_meters():
    assert resolve_config({"model": "musicvae"})["meters"] is None
    assert resolve_config({"model": "musicvae", "meters": ["2/4", "6/8"]})["meters"] == \
        ["2/4", "6/8"]
    assert resolve_config({"model": "musicvae", "meters": "ANY"})["meters"] == "any"
    assert resolve_config({"model": "musicvae", "meters": "2/4,6/8"})["meters"] == \
        ["2/4", "6/8"]                                     # what --meters 2/4,6/8 gives
    for bad, detail in ((["3/32"], "3/2 sixteenth steps"), (["x"], "'x' is not a time"),
                        (3, "got int 3"), (["any"], "'any' is not a time")):
        with pytest.raises(ConfigError, match=r"key 'meters' must be null .*" + detail):
            resolve_config({"model": "musicvae", "meters": bad}, source="my.config.json")
    with pytest.raises(ConfigError, match="unknown key 'meters'"):
        resolve_config({"meters": "any"})                 # SampleRNN has no such key


# === One file ===

def test_2_4_tune_windows_start_on_its_bar_lines(tmp_path):
    path = eighths(tmp_path / "polka.mid", (2, 4), 24)    # 6 bars of 2/4 = 48 steps
    assert melodies_from_midi(path) == []                  # the default rule rejects 2/4
    (melody,) = melodies_from_midi(path, meters=["2/4"])
    assert (melody.meter, melody.steps_per_bar, melody.num_bars) == ("2/4", 8, 6)
    slices = midi_to_slices(path, 2, meters=["2/4"])
    # 32-step windows (four 2/4 bars) starting on each 2/4 bar line: steps 0, 8, 16
    assert slices.shape == (3, 32)
    assert first_pitches(slices) == [50, 54, 58]
    np.testing.assert_array_equal(slices[1], melody.classes[8:40])
    np.testing.assert_array_equal(midi_to_slices(path, 2, meters="any"), slices)


def test_6_8_tune_windows_are_cut_at_a_step_count(tmp_path):
    path = eighths(tmp_path / "jig.mid", (6, 8), 24)      # 4 bars of 6/8 = 48 steps
    assert midi_to_slices(path, 2, meters=["2/4"]).shape == (0, 32)
    slices = midi_to_slices(path, 2, meters=["6/8"])
    # windows start on the 6/8 bar lines 0 and 12; one at 24 would need 56 steps
    assert first_pitches(slices) == [50, 56]
    found = find_melody_slice(path, 32, ["6/8"])
    assert found.bars == (1, 3) and found.times == (0.0, 4.0)
    assert found.time_signature == (6, 8)
    assert "6/8 segment 0" in found.describe() and "bars 1-3 of the segment" in found.describe()
    assert "32 steps = 2 2/3 bars of 6/8" in found.describe()


def test_a_rest_of_one_bar_of_the_meter_ends_a_melody(tmp_path):
    # an 8-step rest is a whole 2/4 bar but half a 4/4 bar
    notes = dict(count=8, rest_after=3, rest=8)
    two_four = melodies_from_midi(eighths(tmp_path / "a.mid", (2, 4), **notes), meters=["2/4"])
    assert [(m.start_bar, m.num_bars) for m in two_four] == [(0, 1), (2, 1)]
    (four_four,) = melodies_from_midi(eighths(tmp_path / "b.mid", (4, 4), **notes))
    assert four_four.num_bars == 2


def test_2_2_is_used_by_default(tmp_path):
    path = eighths(tmp_path / "reel.mid", (2, 2), 24)
    assert first_pitches(midi_to_slices(path, 2)) == [50, 58]


def test_a_rejected_file_names_its_meters_and_the_rule(tmp_path):
    path = eighths(tmp_path / "polka.mid", (2, 4), 24)
    with pytest.raises(ValueError) as info:
        find_melody_slice(path, 32)
    message = str(info.value)
    assert "polka.mid: no melody to use: no segment in a meter used (found: 2/4 x1" in message
    assert "4/4, 2/2" in message and "meters" in message


def test_mixed_meters_keep_only_the_accepted_segment():
    # two bars of 3/4 (24 steps, 3 s), then 2/4 from 3 s on
    seq = music_pb2.NoteSequence(ticks_per_quarter=220)
    seq.time_signatures.add(time=0.0, numerator=3, denominator=4)
    seq.time_signatures.add(time=3.0, numerator=2, denominator=4)
    seq.tempos.add(time=0.0, qpm=120)
    for i in range(24):
        seq.notes.add(pitch=60 + i % 12, start_time=i * 2 * STEP, end_time=(i * 2 + 2) * STEP,
                      velocity=80)
    seq.total_time = 6.0
    (melody,), stats = extract_melodies(seq, meters=["2/4"])
    assert stats.meters == {"3/4": 1, "2/4": 1} and stats.rejected_meters == {"3/4": 1}
    assert (melody.meter, melody.segment, melody.start_time) == ("2/4", 1, 3.0)
    np.testing.assert_array_equal(melody.classes[[0, 2, 22]],
                                  [pitch_to_class(60), pitch_to_class(61), pitch_to_class(71)])
    assert len(melody.classes) == 24 and NOTE_OFF not in melody.classes


# === Corpus ===

def folk_corpus(folder):
    os.makedirs(folder, exist_ok=True)
    eighths(os.path.join(folder, "hornpipe.mid"), (4, 4), 24)
    eighths(os.path.join(folder, "reel.mid"), (2, 2), 24, first_pitch=60)
    eighths(os.path.join(folder, "polka.mid"), (2, 4), 24, first_pitch=40)
    eighths(os.path.join(folder, "jig.mid"), (6, 8), 24, first_pitch=70)
    return folder


def test_report_counts_segments_per_meter_used_and_rejected(tmp_path):
    corpus = folk_corpus(tmp_path / "c")
    slices, report = extract_corpus(corpus, 2, use_cache=False)
    assert report.files_used == 2 and report.rejected == {REASON_NO_METER: 2}
    assert sorted(report.rejected_files[REASON_NO_METER]) == ["jig.mid", "polka.mid"]
    assert report.used_meters == {"4/4": 1, "2/2": 1}
    assert report.rejected_meters == {"2/4": 1, "6/8": 1} and report.segments_used == 2
    summary = report.summary()
    assert "used: 2/2 x1, 4/4 x1" in summary and "not in a meter used: 2/4 x1, 6/8 x1" in summary
    more, report = extract_corpus(corpus, 2, meters=["2/4", "6/8"], use_cache=False)
    assert report.files_used == 4 and report.rejected == {} and report.rejected_meters == {}
    assert len(more) == len(slices) + 3 + 2 and "and 2/4, 6/8" in report.summary()
    assert sorted(set(first_pitches(more)) - set(first_pitches(slices))) == [40, 44, 48, 70, 76]


def test_cache_entries_do_not_mix_meter_rules(tmp_path):
    corpus = folk_corpus(tmp_path / "c")
    cache = tmp_path / "cache"
    default, report = extract_corpus(corpus, 2, cache_dir=cache)
    extra, extra_report = extract_corpus(corpus, 2, cache_dir=cache, meters=["2/4"])
    assert not extra_report.from_cache and extra_report.cache_path != report.cache_path
    assert len(extra) == len(default) + 3 and extra_report.meter_rule == ["2/4"]
    again, again_report = extract_corpus(corpus, 2, cache_dir=cache)
    assert again_report.from_cache and again_report.cache_path == report.cache_path
    np.testing.assert_array_equal(again, default)
    assert again_report.rejected_meters == {"2/4": 1, "6/8": 1}
    # the same rule written another way is the same entry
    same, same_report = extract_corpus(corpus, 2, cache_dir=cache, meters="2/4, 4/4")
    assert same_report.from_cache and same_report.cache_path == extra_report.cache_path
    anything = extract_corpus(corpus, 2, cache_dir=cache, meters="any")[1]
    assert not anything.from_cache and len(os.listdir(cache)) == 3


def test_demo_tunes_in_2_4_and_6_8(tmp_path):
    names = ["0001-00501.mid", "0001-005014.mid", "0001-005017.mid"]   # 2/4, 6/8, 4/4
    _, report = extract_corpus(ONEILLS, 2, files=names, use_cache=False)
    assert report.files_used == 1 and report.rejected_meters == {"2/4": 1, "6/8": 1}
    slices, report = extract_corpus(ONEILLS, 2, 8, files=names, use_cache=False, meters="any")
    assert report.files_used == 3 and len(slices) == 3 * 8
    polka = find_melody_slice(os.path.join(ONEILLS, names[0]), 32, ["2/4"])
    assert polka.melody.meter == "2/4" and polka.bars == (1, 4)
