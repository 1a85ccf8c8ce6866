"""tf.data pipelines of melody slices for MusicVAE.

`make_melody_datasets` extracts (or loads from the cache) the `slice_bar`-bar slices of the
training and evaluation MIDI folders with `audiogen.midi.corpus.extract_corpus` and returns
finite datasets of int32 `[batch, slice_bar * 16]` class tensors (see `audiogen.midi.encoding`
for the 90-class encoding):

* `train`: reshuffled every pass, optionally transposed at random, `drop_remainder=True`; one
  pass is one epoch (call `.repeat()` to train by steps).
* `validation`: fixed order, no augmentation, `drop_remainder=False`.

Without `eval_dir`, a share `eval_fraction` of the training folder's FILES is held out, chosen
by a hash of each file's relative path (stable across runs and machines). Evaluation slices that
are identical to a training slice are dropped (and counted), so the held-out accuracy is measured
on melodies the model has not seen; a transposed copy is another melody.

Transposition (`transpose_range` = n > 0): every training example is shifted by a random number
of semitones in [-n, n]; when the shift would move any of its pitches outside 21..108, the example
keeps its original pitches (shift 0) rather than being clipped, so no melody is distorted.
"""
import collections
import dataclasses

import numpy as np
import tensorflow as tf

from audiogen.data.replicas import split_for_replicas
from audiogen.hashing import stable_fraction
from audiogen.midi.corpus import extract_corpus, list_midi_files
from audiogen.midi.encoding import FIRST_PITCH_CLASS, NUM_CLASSES, STEPS_PER_BAR, \
    always_hold_accuracy
from audiogen.midi.slicing import drop_seen, slice_keys

MelodyDatasets = collections.namedtuple("MelodyDatasets", ["train", "validation", "info"])


@dataclasses.dataclass
class MelodyDatasetInfo:
    """Sizes of the melody datasets and the extraction reports behind them."""
    slice_steps: int
    batch_size: int
    train_examples: int
    eval_examples: int
    train_files: int
    eval_files: int
    steps_per_epoch: int
    eval_steps: int
    held_out: bool
    transpose_range: int = 0
    train_report: object = None
    eval_report: object = None
    eval_overlap: int = 0                     # evaluation slices identical to a training one
    eval_hold_accuracy: float = float("nan")  # predicting NO_EVENT at every evaluation step

    def summary(self):
        """A few lines for the training log."""
        bars = self.slice_steps // STEPS_PER_BAR
        lines = [f"Melody data: {self.train_examples} training slices of {bars} bars from "
                 f"{self.train_files} files ({self.steps_per_epoch} batches of "
                 f"{self.batch_size} per epoch"
                 + (f", transposed by up to +/-{self.transpose_range} semitones"
                    if self.transpose_range else "") + ")"]
        if self.eval_report is None:
            lines.append("No evaluation data (eval_dir unset and eval_fraction 0)")
        else:
            source = "held out from train_dir" if self.held_out else "from eval_dir"
            lines.append(f"Evaluation: {self.eval_examples} slices from {self.eval_files} files "
                         f"{source} ({self.eval_steps} batches; {self.eval_overlap} identical "
                         f"to a training slice dropped; always-hold accuracy "
                         f"{self.eval_hold_accuracy:.3f})")
        lines.append("Training extraction: " + self.train_report.summary())
        if self.eval_report is not None:
            lines.append("Evaluation extraction: " + self.eval_report.summary())
        return "\n".join(lines)


def transpose_classes(classes, shift):
    """Shift the note-on classes of one example `[num_steps]` by `shift` semitones.

    When any shifted pitch would leave 21..108 the example is returned unchanged (shift 0).
    Works on int tensors; `shift` is a scalar.
    """
    classes = tf.convert_to_tensor(classes)
    shift = tf.cast(shift, classes.dtype)
    is_note = classes >= FIRST_PITCH_CLASS
    shifted = classes + shift
    fits = tf.logical_or(tf.logical_not(is_note), tf.logical_and(
        shifted >= FIRST_PITCH_CLASS, shifted < NUM_CLASSES))
    shift = tf.where(tf.reduce_all(fits), shift, tf.zeros_like(shift))
    return tf.where(is_note, classes + shift, classes)


def hold_out_files(names, eval_fraction):
    """Split relative file paths into (train, eval) by a stable hash of each path.

    A file goes to eval when `stable_fraction(path)` (the first 8 hex digits of sha1(path) as a
    fraction of 2**32) is below `eval_fraction`. With `eval_fraction` > 0 and at least 2 files,
    at least one file is held out and at least one kept for training (the lowest / highest
    hashes).
    """
    names = sorted(names)
    if eval_fraction <= 0 or len(names) < 2:
        return names, []
    score = {n: stable_fraction(n) for n in names}
    held = [n for n in names if score[n] < eval_fraction]
    if not held:
        held = [min(names, key=score.get)]
    if len(held) == len(names):
        held.remove(max(names, key=score.get))
    held_set = set(held)
    return [n for n in names if n not in held_set], sorted(held)


def melody_dataset(slices, batch_size, training, transpose_range=0, seed=0, shard=None):
    """A tf.data pipeline over an int32 `[N, num_steps]` array of slices (see module doc).

    With `shard` (an `InputShard`, `batch_size` the global batch), one element per replica and
    step: training reads every `shard.count`-th slice, from the shard's own; evaluation reads
    all and keeps the shard's rows of each batch.
    """
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(slices, np.int32))
    if shard is not None and training:
        ds = ds.shard(shard.count, shard.index)
    if training:
        ds = ds.shuffle(len(slices), seed=seed, reshuffle_each_iteration=True)
        if transpose_range > 0:
            width = 2 * int(transpose_range) + 1
            randoms = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
            ds = tf.data.Dataset.zip((ds, randoms)).map(
                lambda x, r: transpose_classes(
                    x, tf.cast(tf.math.floormod(r, width), tf.int32) - int(transpose_range)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shard is None:
        ds = ds.batch(batch_size, drop_remainder=training)
    elif training:
        ds = split_for_replicas(ds.batch(shard.pipeline_batch, drop_remainder=True), shard)
    else:
        ds = split_for_replicas(ds.batch(batch_size), shard, shard.first_row)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_melody_datasets(train_dir, eval_dir=None, *, slice_bar, batch_size,
                         max_slices_per_file, transpose_range=0, eval_fraction=0.1,
                         num_workers=1, seed=0, cache_dir=None, meters=None, shard=None):
    """Training and evaluation datasets of melody slices.

    Args:
        train_dir: folder of MIDI files (searched recursively).
        eval_dir: folder of evaluation MIDI files, or None to hold out `eval_fraction` of the
            files of `train_dir` (none when `eval_fraction` is 0: `validation` is then None).
        slice_bar: bars per example (`slice_bar * 16` steps).
        batch_size: examples per batch.
        max_slices_per_file: at most this many slices per file (random in training, first N in
            evaluation); None: every window.
        transpose_range: training augmentation, random shift in [-n, n] semitones.
        num_workers: extraction processes (0/1: in process).
        seed: seeds slice subsets, shuffling and transposition.
        cache_dir: extraction cache folder (default: see `extract_corpus`).
        meters: the meters used (config key `meters`; see `audiogen.midi.meters`).
        shard: an `InputShard` for a distributed run (see `melody_dataset`), or None.
    Returns:
        `MelodyDatasets(train, validation, info)`; `info` is a `MelodyDatasetInfo` (sizes, the two
        `ExtractionReport`s, `summary()`).
    Raises:
        ValueError when a folder yields no example (with the counts), when there are fewer
        training examples than `batch_size`, or when every evaluation slice is also a training
        slice.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    common = dict(slice_bar=slice_bar, max_slices_per_file=max_slices_per_file, seed=seed,
                  num_workers=num_workers, cache_dir=cache_dir, meters=meters)
    if eval_dir is None:
        (train, train_report, train_names), (evals, eval_report, eval_names) = \
            _extract_held_out(train_dir, eval_fraction, common)
    else:
        train, train_report = extract_corpus(train_dir, training=True, **common)
        evals, eval_report = extract_corpus(eval_dir, training=False, **common)
        train_names = list_midi_files(train_dir)
        eval_names = list_midi_files(eval_dir)

    if len(train) < batch_size:
        raise ValueError(
            f"only {len(train)} training examples of {slice_bar} bars in {train_dir}, fewer than "
            f"batch_size={batch_size}: lower batch_size, raise max_slices_per_file "
            f"({max_slices_per_file}) or add MIDI files. {train_report.summary()}")
    if shard is not None and len(train) // shard.count < shard.pipeline_batch:
        raise ValueError(f"{len(train)} training examples in {train_dir} for {shard.count} "
                         f"workers, fewer than {shard.pipeline_batch} each (the rows of each "
                         f"worker's replicas): lower batch_size or add MIDI files")
    overlap = 0
    if evals is not None:
        evals, overlap = _drop_training_slices(evals, train, eval_dir or train_dir)
    train_ds = melody_dataset(train, batch_size, True, transpose_range, seed, shard)
    validation_ds = None if evals is None else melody_dataset(evals, batch_size, False,
                                                              shard=shard)
    info = MelodyDatasetInfo(
        slice_steps=slice_bar * STEPS_PER_BAR,
        batch_size=batch_size,
        train_examples=int(len(train)),
        eval_examples=0 if evals is None else int(len(evals)),
        train_files=len(train_names),
        eval_files=len(eval_names),
        steps_per_epoch=int(len(train)) // batch_size,
        eval_steps=0 if evals is None else -(-int(len(evals)) // batch_size),
        held_out=eval_dir is None,
        transpose_range=int(transpose_range),
        train_report=train_report,
        eval_report=eval_report,
        eval_overlap=overlap,
        eval_hold_accuracy=always_hold_accuracy([] if evals is None else evals))
    return MelodyDatasets(train_ds, validation_ds, info)


def _drop_training_slices(evals, train, eval_source):
    """`(evals without the slices identical to a training slice, how many were dropped)`."""
    kept, overlap = drop_seen(evals, slice_keys(train), remember=False)
    if not len(kept):
        raise ValueError(f"all {len(evals)} evaluation slices of {eval_source} are identical to "
                         f"training slices: evaluate on other MIDI files (eval_dir, or "
                         f"eval_fraction of train_dir's files)")
    return kept, overlap


def _extract_held_out(train_dir, eval_fraction, common):
    """`(train, report, names)` of the training files of `train_dir` and the same of the files
    `hold_out_files` keeps for evaluation (`(None, None, [])` when none are)."""
    train_names, eval_names = hold_out_files(list_midi_files(train_dir), eval_fraction)
    if not train_names:
        raise ValueError(f"no MIDI files (.mid, .midi) found under {train_dir}: 0 files "
                         f"found, 0 parsed, 0 examples")
    train, train_report = extract_corpus(train_dir, training=True, files=train_names, **common)
    if not eval_names:
        return (train, train_report, train_names), (None, None, eval_names)
    try:
        evals, eval_report = extract_corpus(train_dir, training=False, files=eval_names,
                                            **common)
    except ValueError as e:
        raise ValueError(f"the {len(eval_names)} files held out for evaluation "
                         f"(eval_fraction={eval_fraction}) gave no example; set "
                         f"eval_dir or change eval_fraction. {e}") from None
    return (train, train_report, train_names), (evals, eval_report, eval_names)
