"""tf.data melody pipelines (audiogen.data.melody_dataset) on tiny MIDI corpora."""
import os

import numpy as np
import pytest
import tensorflow as tf

from audiogen.data import melody_dataset as md
from audiogen.midi.corpus import extract_corpus
from audiogen.midi.encoding import NOTE_OFF, pitch_to_class
from audiogen.midi.files import write_midi


def tune(seed, bars):
    rng = np.random.default_rng(seed)
    out = np.zeros(bars * 16, np.int32)
    for step in range(0, len(out), 4):
        out[step] = pitch_to_class(int(rng.integers(48, 84)))
    return out


def make_corpus(folder, n, bars=6, start=0):
    os.makedirs(folder, exist_ok=True)
    for i in range(start, start + n):
        write_midi(tune(i, bars), os.path.join(folder, f"tune{i:02d}.mid"))
    return str(folder)


def collect(ds):
    return [b.numpy() for b in ds]


def test_train_and_eval_datasets(tmp_path):
    train_dir = make_corpus(tmp_path / "train", 4)          # 4 files x 5 slices
    eval_dir = make_corpus(tmp_path / "eval", 2, start=50)  # 2 files x 3 (max) slices
    data = md.make_melody_datasets(train_dir, eval_dir, slice_bar=2, batch_size=3,
                                   max_slices_per_file=3, cache_dir=tmp_path / "cache")
    info = data.info
    assert (info.train_examples, info.eval_examples) == (12, 6)
    assert (info.train_files, info.eval_files, info.held_out) == (4, 2, False)
    assert info.slice_steps == 32 and info.steps_per_epoch == 4 and info.eval_steps == 2
    assert info.train_examples == 12 and "12 training slices of 2 bars" in info.summary()
    assert "Evaluation: 6 slices from 2 files from eval_dir" in info.summary()
    assert data.train.element_spec.dtype == tf.int32
    assert data.train.element_spec.shape.as_list() == [3, 32]       # drop_remainder=True
    train = collect(data.train)
    assert len(train) == 4 and all(b.shape == (3, 32) for b in train)
    # eval: fixed order, the first N slices of each file, last batch kept
    data = md.make_melody_datasets(train_dir, eval_dir, slice_bar=2, batch_size=4,
                                   max_slices_per_file=3, cache_dir=tmp_path / "cache")
    assert data.info.train_report.from_cache and data.info.eval_report.from_cache
    evals = collect(data.validation)
    assert [b.shape for b in evals] == [(4, 32), (2, 32)]
    expected, _ = extract_corpus(eval_dir, 2, 3, training=False, use_cache=False)
    np.testing.assert_array_equal(np.concatenate(evals), expected)
    np.testing.assert_array_equal(np.concatenate(collect(data.validation)), expected)
    # train: a finite pass over all examples, reshuffled each pass
    passes = [np.concatenate(collect(data.train)) for _ in range(3)]
    assert all(p.shape == (12, 32) for p in passes)
    assert not all(np.array_equal(passes[0], p) for p in passes[1:])
    key = lambda a: sorted(map(bytes, a))
    assert key(passes[0]) == key(passes[1])


def test_held_out_files_by_stable_hash(tmp_path):
    names = [f"folder/tune{i:02d}.mid" for i in range(40)]
    train, held = md.hold_out_files(names, 0.25)
    assert md.hold_out_files(list(reversed(names)), 0.25) == (train, held)
    assert sorted(train + held) == names and not set(train) & set(held)
    assert 3 <= len(held) <= 20
    # a file keeps its side when others are added
    _, held_more = md.hold_out_files(names + ["other.mid"], 0.25)
    assert set(held) <= set(held_more)
    # at least one file on each side; none held out with eval_fraction 0
    assert md.hold_out_files(["a.mid", "b.mid"], 0.01)[1] != []
    assert md.hold_out_files(["a.mid", "b.mid"], 0.99)[0] != []
    assert md.hold_out_files(names, 0.0) == (names, [])

    corpus = make_corpus(tmp_path / "c", 6)
    data = md.make_melody_datasets(corpus, None, slice_bar=2, batch_size=2,
                                   max_slices_per_file=2, eval_fraction=0.3,
                                   cache_dir=tmp_path / "cache")
    info = data.info
    assert info.held_out and info.train_files + info.eval_files == 6
    assert info.eval_files >= 1 and info.eval_examples == 2 * info.eval_files
    assert info.eval_report.files_found == info.eval_files
    data = md.make_melody_datasets(corpus, None, slice_bar=2, batch_size=2,
                                   max_slices_per_file=2, eval_fraction=0.0,
                                   cache_dir=tmp_path / "cache")
    assert data.validation is None and data.info.train_files == 6
    assert "No evaluation data" in data.info.summary()


def test_too_few_examples_and_empty_corpus(tmp_path):
    corpus = make_corpus(tmp_path / "c", 2)
    with pytest.raises(ValueError, match="only 4 training examples .* fewer than batch_size=8"):
        md.make_melody_datasets(corpus, corpus, slice_bar=2, batch_size=8,
                                max_slices_per_file=2, cache_dir=tmp_path / "cache")
    empty = tmp_path / "bad"
    empty.mkdir()
    (empty / "junk.mid").write_bytes(b"junk")
    with pytest.raises(ValueError, match="1 MIDI files found, 0 parsed.*1 unparsable MIDI"):
        md.make_melody_datasets(str(empty), corpus, slice_bar=2, batch_size=2,
                                max_slices_per_file=2, cache_dir=tmp_path / "cache")


def test_transpose_classes():
    c = pitch_to_class
    x = tf.constant([c(60), 0, NOTE_OFF, c(64), 0], tf.int32)
    np.testing.assert_array_equal(md.transpose_classes(x, 3),
                                  [c(63), 0, NOTE_OFF, c(67), 0])
    np.testing.assert_array_equal(md.transpose_classes(x, -2),
                                  [c(58), 0, NOTE_OFF, c(62), 0])
    # a shift that would leave 21..108 keeps the example as it is (no clipping)
    high = tf.constant([c(107), c(60)], tf.int32)
    np.testing.assert_array_equal(md.transpose_classes(high, 2), high)
    np.testing.assert_array_equal(md.transpose_classes(high, 1), [c(108), c(61)])
    low = tf.constant([c(21), 0], tf.int32)
    np.testing.assert_array_equal(md.transpose_classes(low, -1), low)
    rests = tf.constant([0, 1, 0], tf.int32)
    np.testing.assert_array_equal(md.transpose_classes(rests, 5), rests)


def test_transposition_in_the_training_pipeline(tmp_path):
    corpus = make_corpus(tmp_path / "c", 3)
    eval_dir = make_corpus(tmp_path / "e", 2, start=50)
    originals, _ = extract_corpus(corpus, 2, 4, training=True, use_cache=False)
    data = md.make_melody_datasets(corpus, eval_dir, slice_bar=2, batch_size=4,
                                   max_slices_per_file=4, transpose_range=2,
                                   cache_dir=tmp_path / "cache")
    shifts = []
    for _ in range(3):
        for example in np.concatenate(collect(data.train)):
            matches = [s for s in range(-2, 3) for o in originals
                       if np.array_equal(np.where(o >= 2, o + s, o), example)]
            assert matches, "every example is an original shifted by -2..2"
            shifts.append(matches[0])
    assert len(set(shifts)) >= 3
    # eval is never transposed
    evals = np.concatenate(collect(data.validation))
    expected, _ = extract_corpus(eval_dir, 2, 4, training=False, use_cache=False)
    np.testing.assert_array_equal(evals, expected)
