"""MIDI files <-> tensors (audiogen.midi.files), corpus extraction (audiogen.midi.corpus), its
report, rejection reasons and cache."""
import os

import numpy as np
import pytest

from audiogen.midi.corpus import extract_corpus, list_midi_files
from audiogen.midi.corpus_cache import default_cache_dir
from audiogen.midi.encoding import FIRST_PITCH_CLASS, MIN_PITCH, NOTE_OFF, NUM_CLASSES, \
    has_note_on, pitch_to_class
from audiogen.midi.files import MidiReadError, first_melody_slice, melodies_from_midi, \
    midi_to_slices, read_midi, write_midi
from audiogen.midi.melody import music_pb2, note_seq
from audiogen.midi.rejections import REASON_NO_METER, REASON_NO_MELODY, REASON_TOO_SHORT, \
    REASON_UNPARSABLE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONEILLS = os.path.join(ROOT, "data", "demo", "midi", "oneills")


def c(pitch):
    return pitch_to_class(pitch)


def tune(seed, bars=4):
    """A melody of `bars` bars: eighth notes and quarter notes, some repeated pitches."""
    rng = np.random.default_rng(seed)
    out = np.zeros(bars * 16, np.int32)
    step = 0
    while step < len(out):
        out[step] = c(int(rng.integers(55, 80)))
        length = int(rng.choice([2, 4]))
        if rng.random() < 0.3 and step + 1 < len(out):
            out[step + 1] = NOTE_OFF
        step += length
    return out


def write_sequence(path, time_signature=(4, 4), notes=((60, 0.0, 0.5),) * 1):
    seq = music_pb2.NoteSequence(ticks_per_quarter=220)
    seq.time_signatures.add(time=0, numerator=time_signature[0], denominator=time_signature[1])
    seq.tempos.add(time=0, qpm=120)
    for pitch, start, end in notes:
        seq.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=80)
    seq.total_time = max(n.end_time for n in seq.notes)
    note_seq.note_sequence_to_midi_file(seq, os.fspath(path))
    return path


def waltz(path):
    """Eight bars of 3/4 quarter notes."""
    return write_sequence(path, (3, 4), [(60 + i % 7, 0.5 * i, 0.5 * i + 0.4) for i in range(24)])


# === Single files ===

def test_round_trip_tensor_to_midi_and_back(tmp_path):
    classes = np.array(
        [c(60), 0, 0, 0, c(60), 0, c(62), NOTE_OFF, 0, 0, c(64), 0, 0, 0, 0, 0,
         c(108), 0, c(21), 0, 0, NOTE_OFF, 0, 0, c(67), c(67), c(67), 0, 0, 0, 0, 0,
         c(65), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
         0, 0, 0, 0, c(64), 0, 0, 0, c(62), 0, 0, 0, 0, 0, 0, NOTE_OFF], np.int32)
    path = write_midi(classes, tmp_path / "out" / "melody.mid", qpm=96)
    assert os.path.exists(path)
    sequence = read_midi(path)
    assert sequence.tempos[0].qpm == pytest.approx(96)
    (melody,) = melodies_from_midi(path)
    np.testing.assert_array_equal(melody.classes, classes)
    np.testing.assert_array_equal(midi_to_slices(path, 4), classes[None])
    for seed in range(3):   # random tunes too
        classes = tune(seed)
        classes[0] = c(70)
        write_midi(classes, tmp_path / "t.mid")
        (melody,) = melodies_from_midi(tmp_path / "t.mid")
        np.testing.assert_array_equal(melody.classes, classes)


def test_write_midi_accepts_a_list_and_is_atomic(tmp_path):
    a, b = tune(1, bars=2), tune(2, bars=2)
    a[0] = b[0] = c(60)
    path = tmp_path / "two.mid"
    path.write_bytes(b"old content")
    write_midi([a, b], path)
    (melody,) = melodies_from_midi(path)
    np.testing.assert_array_equal(melody.classes, np.concatenate([a, b]))
    write_midi(np.stack([a, b]), path, gap_bars=1)
    first, second = melodies_from_midi(path)
    assert second.start_bar == 3
    assert sorted(os.listdir(tmp_path)) == ["two.mid"]        # no temporary file left
    with pytest.raises(ValueError):
        write_midi([0, 95], tmp_path / "bad.mid")
    assert sorted(os.listdir(tmp_path)) == ["two.mid"]


def test_unparsable_midi_raises_a_clear_error(tmp_path):
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"this is not a MIDI file")
    with pytest.raises(MidiReadError, match="junk.mid: cannot parse MIDI"):
        read_midi(junk)
    with pytest.raises(ValueError, match="junk.mid"):
        first_melody_slice(junk, 32)


def test_first_melody_slice(tmp_path):
    # instrument 0: a 1-bar melody, then (after a rest) a 4-bar one; 32 steps needs the second
    short = np.zeros(16, np.int32)
    short[0], short[4] = c(72), NOTE_OFF
    long = tune(5)
    long[0] = c(60)
    write_midi([short, np.zeros(16, np.int32), long], tmp_path / "a.mid")
    classes, message = first_melody_slice(tmp_path / "a.mid", 32)
    np.testing.assert_array_equal(classes, long[:32])
    assert "a.mid" in message and "melody 2 of 2" in message and "program 0" in message
    assert "bars 3-4" in message
    with pytest.raises(ValueError, match="a.mid: no melody of at least 256 steps"):
        first_melody_slice(tmp_path / "a.mid", 256)
    with pytest.raises(ValueError,
                       match=r"w.mid: no melody to use: no segment in a meter used \(found: 3/4"):
        first_melody_slice(waltz(tmp_path / "w.mid"), 32)


# === Corpus ===

def make_corpus(folder, n=4, bars=4):
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        classes = tune(100 + i, bars=bars)
        sub = "sub" if i % 2 else ""
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
        write_midi(classes, os.path.join(folder, sub, f"tune{i}.mid"))
    return folder


def test_listing_is_recursive_sorted_and_skips_hidden(tmp_path):
    make_corpus(tmp_path / "c", n=4)
    (tmp_path / "c" / "B.MIDI").write_bytes((tmp_path / "c" / "tune0.mid").read_bytes())
    (tmp_path / "c" / "notes.txt").write_text("x")
    os.makedirs(tmp_path / "c" / ".audiogen_cache")
    (tmp_path / "c" / ".audiogen_cache" / "x.mid").write_text("x")
    assert list_midi_files(tmp_path / "c") == [
        "B.MIDI", "sub/tune1.mid", "sub/tune3.mid", "tune0.mid", "tune2.mid"]
    with pytest.raises(FileNotFoundError):
        list_midi_files(tmp_path / "missing")


def test_empty_corpus_error_has_the_counts(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    waltz(corpus / "waltz.mid")
    (corpus / "junk.mid").write_bytes(b"MThd garbage")
    with pytest.raises(ValueError) as info:
        extract_corpus(corpus, 2, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "no 2-bar melody slices could be extracted" in message
    assert "2 MIDI files found, 1 parsed, 0 used, 2 rejected" in message
    assert "1 unparsable MIDI" in message and "1 no segment in a meter used" in message
    assert "3/4 x1" in message
    # the cached (empty) result raises the same way, quickly
    with pytest.raises(ValueError, match="1 unparsable MIDI"):
        extract_corpus(corpus, 2, cache_dir=tmp_path / "cache")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no MIDI files .* found under .*empty: 0 files found"):
        extract_corpus(empty, 2, cache_dir=tmp_path / "cache")


def test_report_counts_rejections_by_reason(tmp_path):
    corpus = make_corpus(tmp_path / "c", n=2, bars=4)
    waltz(os.path.join(corpus, "waltz.mid"))
    write_midi(tune(9, bars=1), os.path.join(corpus, "short.mid"))       # 1 bar only
    write_sequence(os.path.join(corpus, "low.mid"), notes=[(10, 0.0, 1.0)])  # pitch < 21
    (tmp_path / "c" / "junk.midi").write_bytes(b"")
    slices, report = extract_corpus(corpus, 2, use_cache=False)
    assert slices.dtype == np.int32 and slices.shape[1] == 32 and report.examples == len(slices)
    assert (report.files_found, report.files_parsed, report.files_used) == (6, 5, 2)
    assert report.rejected == {REASON_UNPARSABLE: 1, REASON_NO_METER: 1,
                               REASON_TOO_SHORT: 1, REASON_NO_MELODY: 1}
    assert report.rejected_files[REASON_NO_METER] == ["waltz.mid"]
    assert report.out_of_range_notes == 1 and report.files_rejected == 4
    assert not report.from_cache and report.cache_path is None
    assert "6 MIDI files found" in report.summary()


def test_max_slices_per_file_random_in_training_first_in_eval(tmp_path):
    corpus = make_corpus(tmp_path / "c", n=1, bars=12)
    everything = midi_to_slices(os.path.join(corpus, "tune0.mid"), 2)
    assert len(everything) == 11
    evals, report = extract_corpus(corpus, 2, 3, training=False, use_cache=False)
    np.testing.assert_array_equal(evals, everything[:3])
    assert report.capped_slices == 8
    picks = []
    for seed in range(4):
        train, _ = extract_corpus(corpus, 2, 3, training=True, seed=seed, use_cache=False)
        again, _ = extract_corpus(corpus, 2, 3, training=True, seed=seed, use_cache=False)
        np.testing.assert_array_equal(train, again)        # seeded
        assert len(train) == 3
        rows = [int(np.flatnonzero((everything == row).all(1))[0]) for row in train]
        assert rows == sorted(rows)                        # a subset, in source order
        picks.append(tuple(rows))
    assert len(set(picks)) > 1 and any(p != (0, 1, 2) for p in picks)


def test_cache_hit_on_second_run_and_invalidation(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "c", n=3)
    cache = tmp_path / "cache"
    first, report1 = extract_corpus(corpus, 2, 4, cache_dir=cache)
    assert not report1.from_cache and os.path.exists(report1.cache_path)
    assert os.path.dirname(report1.cache_path) == str(cache)
    assert [n for n in os.listdir(cache) if n.startswith(".tmp")] == []

    def no_parsing(*args, **kwargs):
        raise AssertionError("the cache should have been used")
    monkeypatch.setattr("audiogen.midi.corpus._run_tasks", no_parsing)
    second, report2 = extract_corpus(corpus, 2, 4, cache_dir=cache)
    assert report2.from_cache and report2.cache_path == report1.cache_path
    np.testing.assert_array_equal(first, second)
    assert report2.files_found == 3 and report2.examples == len(first)
    # other settings or a changed file miss the cache
    for kwargs in (dict(training=False), dict(seed=1), dict(max_slices_per_file=2)):
        settings = {"max_slices_per_file": 4, "cache_dir": cache, **kwargs}
        with pytest.raises(AssertionError, match="cache should have been used"):
            extract_corpus(corpus, 2, **settings)
    write_midi(tune(50, bars=6), os.path.join(corpus, "tune0.mid"))
    with pytest.raises(AssertionError):
        extract_corpus(corpus, 2, 4, cache_dir=cache)


def test_default_cache_dir(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "c", n=2)
    _, report = extract_corpus(corpus, 2)
    assert os.path.dirname(report.cache_path) == os.path.join(corpus, ".audiogen_cache")
    assert list_midi_files(corpus) == ["sub/tune1.mid", "tune0.mid"]
    assert extract_corpus(corpus, 2)[1].from_cache
    monkeypatch.setattr(os, "access", lambda *args: False)      # folder not writable
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home_cache"))
    assert default_cache_dir(corpus) == str(tmp_path / "home_cache" / "audiogen")


def test_two_workers_give_the_same_result(tmp_path):
    corpus = make_corpus(tmp_path / "c", n=6, bars=6)
    (tmp_path / "c" / "junk.mid").write_bytes(b"junk")
    one, report1 = extract_corpus(corpus, 2, 3, seed=7, num_workers=1, use_cache=False)
    zero, _ = extract_corpus(corpus, 2, 3, seed=7, num_workers=0, use_cache=False)
    two, report2 = extract_corpus(corpus, 2, 3, seed=7, num_workers=2, use_cache=False)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, zero)
    assert report1.rejected == report2.rejected == {REASON_UNPARSABLE: 1}
    assert report2.num_workers == 2


def test_demo_corpus_first_40_files(tmp_path):
    names = list_midi_files(ONEILLS)
    assert len(names) == 400
    slices, report = extract_corpus(ONEILLS, 2, max_slices_per_file=8, files=names[:40],
                                      cache_dir=tmp_path)
    assert report.files_found == 40 and report.files_parsed == 40
    assert report.files_used >= 5 and len(slices) >= 40
    assert report.rejected.get(REASON_NO_METER, 0) >= 10       # mixed metres
    assert len(slices) <= 8 * report.files_used
    assert slices.shape[1] == 32 and slices.min() >= 0 and slices.max() < NUM_CLASSES
    assert has_note_on(slices).all()
    assert len(np.unique(slices, axis=0)) > len(slices) // 2
    # notes stay in the flute/fiddle range
    pitches = slices[slices >= FIRST_PITCH_CLASS] - FIRST_PITCH_CLASS + MIN_PITCH
    assert 50 <= pitches.min() and pitches.max() <= 100
