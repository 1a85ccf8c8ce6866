"""Every window of a corpus, without repeats: the `max_slices_per_file` cap (None: every window),
repeats within and across files (counted), the cache key, held-out slices never identical to
training ones, and the always-hold baseline."""
import os

import numpy as np
import pytest

from audiogen.config import ConfigError, resolve_config
from audiogen.data import melody_dataset as md
from audiogen.midi.corpus import extract_corpus
from audiogen.midi.encoding import FIRST_PITCH_CLASS, NO_EVENT, always_hold_accuracy, \
    pitch_to_class
from audiogen.midi.files import midi_to_slices, write_midi
from audiogen.midi.rejections import REASON_REPEATS
from audiogen.midi.slicing import drop_seen, slice_keys


def tune(seed, bars=6):
    """Quarter notes of random pitches: every bar differs from the others."""
    rng = np.random.default_rng(seed)
    out = np.zeros(bars * 16, np.int32)
    out[::4] = [pitch_to_class(int(p)) for p in rng.integers(55, 80, bars * 4)]
    return out


def transposed(classes, shift):
    return np.where(classes >= FIRST_PITCH_CLASS, classes + shift, classes)


def corpus_with_repeats(folder):
    """a: 6 bars (5 windows of 2 bars); b: a copy of a; c: a a tone higher; d: a's first 4 bars
    and 2 new ones (3 windows repeat a's, 2 are new)."""
    os.makedirs(folder, exist_ok=True)
    a = tune(1)
    d = np.concatenate([a[:64], tune(2, bars=2)])
    for name, classes in (("a", a), ("b", a), ("c", transposed(a, 2)), ("d", d)):
        write_midi(classes, os.path.join(folder, f"{name}.mid"))
    return str(folder)


def rows(slices):
    return [bytes(r) for r in np.asarray(slices, np.int32)]


def test_drop_seen_keeps_order_and_counts():
    x = np.array([[1, 2], [3, 4], [1, 2], [5, 6]], np.int32)
    seen = slice_keys([[5, 6]])
    kept, dropped = drop_seen(x, seen)
    np.testing.assert_array_equal(kept, [[1, 2], [3, 4]])
    assert dropped == 2 and seen == slice_keys([[1, 2], [3, 4], [5, 6]])
    kept, dropped = drop_seen(x, set(), remember=False)
    assert dropped == 0 and len(kept) == 4


def test_every_window_drops_repeats_of_earlier_files(tmp_path):
    corpus = corpus_with_repeats(tmp_path / "c")
    a = midi_to_slices(os.path.join(corpus, "a.mid"), 2)
    assert len(a) == 5
    slices, report = extract_corpus(corpus, 2, None, use_cache=False)
    assert len(slices) == report.examples == 5 + 5 + 2
    assert len(slice_keys(slices)) == len(slices)                 # no two alike
    np.testing.assert_array_equal(slices[:5], a)
    np.testing.assert_array_equal(slices[5:10], transposed(a, 2))  # transposed: not a repeat
    assert report.windows == 20 and report.repeated_slices == 5 + 3
    assert report.capped_slices == 0 and report.duplicate_slices == 0
    assert report.rejected == {REASON_REPEATS: 1} and report.rejected_files[REASON_REPEATS] == \
        ["b.mid"]
    assert report.files_used == 3
    summary = report.summary()
    assert "8 repeating an earlier file's dropped" in summary and "no cap" in summary


def test_the_cap_applies_after_the_repeats_are_dropped(tmp_path):
    corpus = corpus_with_repeats(tmp_path / "c")
    a = midi_to_slices(os.path.join(corpus, "a.mid"), 2)
    slices, report = extract_corpus(corpus, 2, 2, training=False, use_cache=False)
    # a: windows 0, 1 (3 capped); b: a's 0, 1 repeat, a's 2, 3 (capped away in a) are kept;
    # c: 2 of 5; d: its first 3 windows repeat a's 0, 1 and b's 2, 2 new ones are kept.
    assert len(slices) == 2 + 2 + 2 + 2
    np.testing.assert_array_equal(slices[2:4], a[2:4])
    assert report.repeated_slices == 2 + 3 and report.capped_slices == 3 + 1 + 3 + 0
    assert report.rejected == {} and "7 over max_slices_per_file=2" in report.summary()
    train, _ = extract_corpus(corpus, 2, 2, training=True, seed=3, use_cache=False)
    assert len(train) <= 8 and len(slice_keys(train)) == len(train)


def test_counts_with_and_without_the_cap_on_the_demo_tunes(tmp_path):
    demo = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "data", "demo", "midi", "oneills")
    files = sorted(os.listdir(demo))[:30]
    every, report = extract_corpus(demo, 2, None, files=files, meters="any",
                                   cache_dir=tmp_path)
    capped, capped_report = extract_corpus(demo, 2, 8, files=files, meters="any",
                                           cache_dir=tmp_path)
    assert not capped_report.from_cache                            # the cap is in the key
    assert extract_corpus(demo, 2, None, files=files, meters="any",
                          cache_dir=tmp_path)[1].from_cache
    assert len(every) > len(capped) and len(capped) <= 8 * capped_report.files_used
    assert len(slice_keys(every)) == len(every)
    assert report.windows == report.silent_slices + report.duplicate_slices + \
        report.repeated_slices + report.examples
    assert capped_report.windows == capped_report.silent_slices + \
        capped_report.duplicate_slices + capped_report.repeated_slices + \
        capped_report.capped_slices + capped_report.examples


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "all"])
def test_a_bad_cap_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="max_slices_per_file must be a positive integer, or "
                                         "None for every window"):
        extract_corpus(tmp_path, 2, bad)
    with pytest.raises(ConfigError, match=r"'max_slices_per_file' must be .*or null \(every "
                                          r"window\)"):
        resolve_config({"model": "musicvae", "max_slices_per_file": bad})


def test_config_keys_max_slices_null_and_early_stopping_patience():
    config = resolve_config({"model": "musicvae", "max_slices_per_file": None,
                             "early_stopping_patience": 4})
    assert config["max_slices_per_file"] is None and config["early_stopping_patience"] == 4
    assert resolve_config({"model": "musicvae"})["early_stopping_patience"] is None
    for bad in (0, 1.5, "3"):
        with pytest.raises(ConfigError, match=r"'early_stopping_patience' must be .*or null "
                                              r"\(never stop early\)"):
            resolve_config({"model": "musicvae", "early_stopping_patience": bad})


def test_held_out_slices_are_never_training_slices(tmp_path):
    train_dir = corpus_with_repeats(tmp_path / "train")
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    a = tune(1)
    write_midi(a, str(eval_dir / "copy.mid"))                     # all 5 in training
    write_midi(np.concatenate([a[:48], tune(7, bars=3)]), str(eval_dir / "half.mid"))
    data = md.make_melody_datasets(train_dir, str(eval_dir), slice_bar=2, batch_size=4,
                                   max_slices_per_file=None, cache_dir=tmp_path / "cache")
    info = data.info
    evals = np.concatenate([b.numpy() for b in data.validation])
    train, _ = extract_corpus(train_dir, 2, None, use_cache=False)
    assert not set(rows(evals)) & set(rows(train))
    # half.mid's first 2 windows repeat copy.mid's (dropped in the extraction), copy.mid's 5
    # are training slices (dropped after it)
    assert info.eval_report.repeated_slices == 2
    assert info.eval_overlap == 5 and info.eval_examples == len(evals) == 3
    assert info.eval_hold_accuracy == pytest.approx(np.mean(evals == NO_EVENT))
    assert "5 identical to a training slice dropped" in info.summary()
    assert "always-hold accuracy 0.750" in info.summary()

    (eval_dir / "half.mid").unlink()
    with pytest.raises(ValueError, match=f"all 5 evaluation slices of {eval_dir} are identical "
                                         f"to training slices"):
        md.make_melody_datasets(train_dir, str(eval_dir), slice_bar=2, batch_size=4,
                                max_slices_per_file=None, cache_dir=tmp_path / "cache")


def test_held_out_files_share_no_slice_with_training_files(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    for i in range(8):                          # each tune twice, under two names
        for copy in "xy":
            write_midi(tune(i, bars=4), str(folder / f"{copy}{i}.mid"))
    data = md.make_melody_datasets(str(folder), None, slice_bar=2, batch_size=2,
                                   max_slices_per_file=None, eval_fraction=0.3,
                                   cache_dir=tmp_path / "cache")
    train_names, eval_names = md.hold_out_files(sorted(os.listdir(folder)), 0.3)
    twins = sum(f"{'y' if n[0] == 'x' else 'x'}{n[1:]}" in train_names for n in eval_names)
    assert twins >= 1
    evals = np.concatenate([b.numpy() for b in data.validation])
    train, _ = extract_corpus(str(folder), 2, None, files=train_names, use_cache=False)
    assert not set(rows(evals)) & set(rows(train))
    assert data.info.eval_overlap == 3 * twins


def test_always_hold_accuracy():
    c = pitch_to_class(60)
    assert always_hold_accuracy([c, 0, 0, 1]) == 0.5
    assert always_hold_accuracy(np.array([[c, 0], [0, 0]])) == 0.75
    assert np.isnan(always_hold_accuracy([]))
