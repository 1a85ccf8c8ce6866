"""The SampleRNN training pipeline: audio files -> quantized pieces -> truncated-BPTT windows.

Every file, without its leading and trailing silence, is cut into pieces of `L` samples (`L` a
multiple of `seq_len`, about `piece_dur` seconds; a tail of at least `seq_len` samples gives one
more piece, the file's last `L` samples; a file shorter than a piece is padded with silence at
its end); each piece is quantized and prefixed with `top_frame_size` samples of silence (the
model's learned initial state and that silent frame begin each piece, as they begin
generation). Pieces
are batched `batch_size` at a time and each batch is walked as `L / seq_len` consecutive windows
`padded[:, i * seq_len : i * seq_len + seq_len + top_frame_size]`; an element is `(x, reset)`
with `x` int32 `[batch_size, seq_len + top_frame_size]` and `reset` bool `[batch_size]`, True
on window 0 of each batch (the model restarts each row's RNN state there).

A distributed run (`shard`, see `audiogen.data.replicas`) splits each batch into its replicas'
rows. Several workers each read their own training files, balanced by their pieces, repeated
without end (the workers' shares differ a little; an epoch is the global number of steps); every
worker reads all validation pieces and keeps its rows of each batch.

All counting (files, pieces, the validation split, steps per epoch) happens in Python from file
headers, before tf.data runs; decoding, resampling, quantization and windowing are graph ops.
"""
import dataclasses
import os
import warnings
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from audiogen.audio.io import SUPPORTED_EXTENSIONS, UnsupportedAudioError, decode_audio, \
    is_supported_path, probe_audio
from audiogen.audio.quantize import num_levels, quantize, silence_level
from audiogen.data.replicas import split_for_replicas
from audiogen.hashing import stable_digest

# Memory the piece shuffle buffer may hold; the buffer holds at least one batch of pieces.
SHUFFLE_BUFFER_BYTES = 256 * 2 ** 20
# A file's leading and trailing samples 50 dB or more below its peak are left out.
SILENCE_BELOW_PEAK = 10 ** (-50 / 20)


@dataclasses.dataclass(frozen=True)
class AudioDatasetInfo:
    """What `make_audio_datasets` found and built.

    Args:
        files: `tuple[str]`, the files used, sorted.
        skipped_files: `tuple[(str, str)]`, `(path, reason)` of each file that was skipped.
        piece_len: `int`, samples per piece `L` (at the target sample rate, before the
            `top_frame_size` silence prefix).
        windows_per_piece: `int`, `L // seq_len`.
        num_train_pieces: `int`, pieces in the training split.
        num_val_pieces: `int`, pieces in the validation split.
        num_dropped_pieces: `int`, training pieces left out of each epoch (the remainder of
            `num_train_pieces / batch_size`; which ones changes every epoch).
        train_steps: `int`, training windows (elements) per epoch.
        val_steps: `int`, validation windows per epoch (0 without validation).
    """
    files: tuple
    skipped_files: tuple
    piece_len: int
    windows_per_piece: int
    num_train_pieces: int
    num_val_pieces: int
    num_dropped_pieces: int
    train_steps: int
    val_steps: int


class AudioDatasets(NamedTuple):
    """Two `tf.data.Dataset`s of `(x, reset)` windows, and what was found building them.

    Args:
        train: `tf.data.Dataset`, reshuffled every epoch.
        validation: `tf.data.Dataset` in a fixed order, or None when `num_val_batches == 0`.
        info: `AudioDatasetInfo`.
    """
    train: tf.data.Dataset
    validation: Optional[tf.data.Dataset]
    info: AudioDatasetInfo


@dataclasses.dataclass(frozen=True)
class _FileTable:
    """Per-file columns for the tf.data source (one row per used file)."""
    paths: list
    format_ids: list
    rates: list
    num_samples: list   # length at the target sample rate
    num_pieces: list
    first_piece: list   # global id of the file's first piece


def make_audio_datasets(data_dir, *, sample_rate, batch_size, seq_len, top_frame_size,
                        q_type="mu-law", q_levels=256, piece_dur=8.0, num_val_batches=1, seed=0,
                        num_parallel_calls=tf.data.AUTOTUNE, shard=None):
    """Build the training and validation datasets from the audio files under `data_dir`.

    Args:
        data_dir: directory searched recursively for .wav/.flac/.ogg/.mp3 files.
        sample_rate: `int`, rate the model trains at; files at other rates are resampled.
        batch_size: `int`, pieces per batch.
        seq_len: `int`, samples predicted per window (truncated-BPTT length).
        top_frame_size: `int`, silence samples prefixed to each piece (the top tier's frame).
        q_type, q_levels: quantization (see `audiogen.audio.quantize`).
        piece_dur: `float`, seconds per piece, rounded to a whole number of windows.
        num_val_batches: `int`, batches of pieces held out for validation (0: no validation).
        seed: `int`, shuffling seed (the validation split does not depend on it).
        num_parallel_calls: files decoded in parallel.
        shard: an `InputShard` for a distributed run (`batch_size` is then the global batch),
            or None.
    Returns:
        `AudioDatasets(train, validation, info)`; elements are `(x, reset)`, `x` int32
        `[batch_size, seq_len + top_frame_size]`, `reset` bool `[batch_size]` (with `shard`:
        `shard.replica_batch` rows, one element per replica and step; `train` endless with
        several workers).
    Raises:
        ValueError: bad arguments, no readable audio in `data_dir`, or too few pieces for the
            validation batches plus one training batch.
    """
    _check_arguments(sample_rate=sample_rate, batch_size=batch_size, seq_len=seq_len,
                     top_frame_size=top_frame_size, num_val_batches=num_val_batches)
    if not piece_dur > 0:
        raise ValueError(f"piece_dur must be positive (seconds), got {piece_dur!r}")
    levels = num_levels(q_type, q_levels)
    piece_len = max(1, round(piece_dur * sample_rate / seq_len)) * seq_len
    windows_per_piece = piece_len // seq_len

    infos, skipped = _probe_directory(data_dir)
    table = _file_table(infos, sample_rate, seq_len, piece_len)
    total_pieces = table.first_piece[-1] + table.num_pieces[-1]
    num_val = num_val_batches * batch_size
    if total_pieces < num_val + batch_size:
        raise ValueError(
            f"{data_dir}: {len(infos)} usable files give {total_pieces} pieces of "
            f"{piece_len / sample_rate:g} s, but {num_val + batch_size} are needed "
            f"({num_val_batches} validation batches and one training batch of {batch_size}); "
            f"add audio, lower batch_size, num_val_batches or piece_dur")
    is_val = _validation_mask(data_dir, table, num_val)
    num_train = total_pieces - num_val
    num_dropped = num_train % batch_size
    if num_dropped:
        warnings.warn(f"{data_dir}: {num_dropped} of {num_train} training pieces are left out of "
                      f"each epoch (not a whole batch of {batch_size}; different ones each epoch)",
                      stacklevel=2)
    info = AudioDatasetInfo(
        files=tuple(table.paths), skipped_files=tuple(skipped), piece_len=piece_len,
        windows_per_piece=windows_per_piece, num_train_pieces=num_train, num_val_pieces=num_val,
        num_dropped_pieces=num_dropped,
        train_steps=num_train // batch_size * windows_per_piece,
        val_steps=num_val_batches * windows_per_piece)

    builder = _PipelineBuilder(
        sample_rate=sample_rate, seq_len=seq_len, top_frame_size=top_frame_size,
        piece_len=piece_len, q_type=q_type, q_levels=levels, batch_size=batch_size,
        is_val=is_val, num_parallel_calls=num_parallel_calls)
    if shard is None or shard.count == 1:
        train = builder.build(table, validation=False, seed=seed, steps=info.train_steps)
        if shard is not None:  # one worker's replicas: the one-device batches, split
            train = split_for_replicas(train, shard)
    else:
        rows = _shard_files(data_dir, table, ~is_val, shard)
        train = split_for_replicas(
            builder.build(table, validation=False, seed=seed, rows=rows, repeat=True,
                          batch_size=shard.pipeline_batch), shard)
    validation = None
    if num_val_batches:
        validation = builder.build(table, validation=True, seed=seed, steps=info.val_steps)
        if shard is not None:
            validation = split_for_replicas(validation, shard, shard.first_row)
    return AudioDatasets(train, validation, info)


def count_pieces(num_samples, seq_len, piece_len):
    """Pieces cut from a file of `num_samples`: whole pieces, plus the tail when it holds at
    least `seq_len` samples; a file shorter than one piece (even empty) gives one piece."""
    full, tail = divmod(int(num_samples), piece_len)
    if full == 0:
        return 1
    return full + (1 if tail >= seq_len else 0)


def piece_key(relative_path, index):
    """Stable sort key of a piece for the validation split (same on every run and machine)."""
    return stable_digest(f"{relative_path}\0{index}")


# --- Python side: files, pieces, split ----------------------------------------------------------

def _probe_directory(data_dir):
    """Sorted `AudioInfo`s of the readable files, and `(path, reason)` of the skipped ones."""
    data_dir = os.fspath(data_dir)
    expected = f"audio files ({', '.join(SUPPORTED_EXTENSIONS)}, any case)"
    if not os.path.isdir(data_dir):
        raise ValueError(f"data_dir {data_dir!r} is not a directory; expected a directory of "
                         f"{expected}")
    paths = sorted(os.path.join(root, name)
                   for root, _, names in os.walk(data_dir, followlinks=True)
                   for name in names if is_supported_path(name))
    infos, skipped = [], []
    for path in paths:
        try:
            infos.append(probe_audio(path))
        except UnsupportedAudioError as e:
            skipped.append((path, str(e).removeprefix(f"{path}: ")))
    if skipped:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in skipped)
        warnings.warn(f"{data_dir}: skipped {len(skipped)} of {len(paths)} audio files that "
                      f"cannot be read:\n{listing}", stacklevel=3)
    if not infos:
        found = f"{len(paths)} found, none readable" if paths else "none found"
        raise ValueError(f"data_dir {data_dir!r} holds no readable {expected} ({found})")
    return infos, skipped


def _file_table(infos, sample_rate, seq_len, piece_len):
    lengths = [info.resampled_length(sample_rate) for info in infos]
    counts = [count_pieces(n, seq_len, piece_len) for n in lengths]
    return _FileTable(
        paths=[info.path for info in infos],
        format_ids=[info.format_id for info in infos],
        rates=[info.sample_rate for info in infos],
        num_samples=lengths,
        num_pieces=counts,
        first_piece=list(np.cumsum([0] + counts[:-1])))


def _validation_mask(data_dir, table, num_val):
    """Boolean `[total_pieces]`: True for the `num_val` pieces with the smallest stable keys."""
    keys = []
    for path, first, count in zip(table.paths, table.first_piece, table.num_pieces):
        relative = os.path.relpath(path, data_dir).replace(os.sep, "/")
        keys += [(piece_key(relative, k), first + k) for k in range(count)]
    is_val = np.zeros(len(keys), dtype=bool)
    for _, piece_id in sorted(keys)[:num_val]:
        is_val[piece_id] = True
    return is_val


def _shard_files(data_dir, table, is_train, shard):
    """The rows of `table` whose training pieces `shard`'s pipeline reads: files dealt to the
    pipelines largest first, each to the one with the fewest pieces so far."""
    pieces = [int(is_train[first:first + count].sum())
              for first, count in zip(table.first_piece, table.num_pieces)]
    owned, load = [[] for _ in range(shard.count)], [0] * shard.count
    for row in sorted((r for r in range(len(pieces)) if pieces[r]), key=lambda r: -pieces[r]):
        least = load.index(min(load))
        owned[least].append(row)
        load[least] += pieces[row]
    if not owned[shard.index]:
        raise ValueError(f"{data_dir}: {sum(1 for p in pieces if p)} files of training audio "
                         f"for {shard.count} workers; each worker reads its own files: add "
                         f"files, or cut long ones (python -m audiogen.audio.chunk)")
    return sorted(owned[shard.index])


def _check_arguments(**values):
    for name, value in values.items():
        minimum = 0 if name in ("top_frame_size", "num_val_batches") else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            kind = "a non-negative" if minimum == 0 else "a positive"
            raise ValueError(f"{name} must be {kind} integer, got {value!r}")


# --- graph side: tf.data ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _PipelineBuilder:
    sample_rate: int
    seq_len: int
    top_frame_size: int
    piece_len: int
    q_type: str
    q_levels: int
    batch_size: int
    is_val: np.ndarray
    num_parallel_calls: Optional[int]

    @property
    def storage_dtype(self):
        """Pieces wait in shuffle buffers as uint8 when the levels fit (4x less memory)."""
        return tf.uint8 if self.q_levels <= 256 else tf.int32

    def build(self, table, validation, seed, steps=None, rows=None, repeat=False,
              batch_size=None):
        """The dataset of `(x, reset)` windows for one split (`steps` elements per epoch), from
        the files of `rows` of `table` (default: all with a piece of the split), `batch_size`
        pieces a batch (default: the builder's); `repeat`: without end."""
        wanted = self.is_val if validation else ~self.is_val
        if rows is None:
            rows = [i for i, (first, count) in enumerate(zip(table.first_piece,
                                                             table.num_pieces))
                    if wanted[first:first + count].any()]
        columns = (
            tf.constant([table.paths[i] for i in rows], tf.string),
            tf.constant([table.format_ids[i] for i in rows], tf.int32),
            tf.constant([table.rates[i] for i in rows], tf.int64),
            tf.constant([table.num_samples[i] for i in rows], tf.int64),
            tf.constant([table.num_pieces[i] for i in rows], tf.int64),
            tf.constant([table.first_piece[i] for i in rows], tf.int64),
        )
        wanted_lookup = tf.constant(wanted)
        files = tf.data.Dataset.from_tensor_slices(columns)
        if not validation:
            files = files.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
        pieces = files.map(self._file_pieces, num_parallel_calls=self.num_parallel_calls)
        pieces = pieces.unbatch().filter(lambda piece, piece_id: tf.gather(wanted_lookup,
                                                                           piece_id))
        pieces = pieces.map(lambda piece, piece_id: piece)
        if repeat:
            pieces = pieces.repeat()
        if not validation:
            pieces = pieces.shuffle(self._shuffle_buffer(int(wanted.sum())), seed=seed + 1,
                                    reshuffle_each_iteration=True)
        windows = pieces.batch(batch_size or self.batch_size, drop_remainder=True) \
            .map(self._windows).unbatch()
        if steps is not None:
            windows = windows.apply(tf.data.experimental.assert_cardinality(steps))
        return windows.prefetch(tf.data.AUTOTUNE)

    def _file_pieces(self, path, format_id, file_rate, num_samples, num_pieces, first_piece):
        """One file -> (`[num_pieces, L + top_frame_size]` levels, `[num_pieces]` global ids)."""
        audio = decode_audio(tf.io.read_file(path), format_id, file_rate, self.sample_rate)
        audio = _fit_length(audio, num_samples)
        audio = _trim_silence(audio)
        starts = _piece_starts(tf.shape(audio, out_type=tf.int64)[0], self.piece_len,
                               self.seq_len, num_pieces)
        # A file (or what is left of it) shorter than a piece is padded with silence at its end.
        audio = tf.pad(audio, [[0, tf.maximum(self.piece_len - tf.size(audio, tf.int64), 0)]])
        cut = tf.gather(audio, starts[:, None] + tf.range(self.piece_len, dtype=tf.int64)[None])
        levels = quantize(cut, self.q_type, self.q_levels)
        levels = tf.pad(levels, [[0, 0], [self.top_frame_size, 0]],
                        constant_values=silence_level(self.q_type, self.q_levels))
        ids = first_piece + tf.range(num_pieces, dtype=tf.int64)
        return tf.cast(levels, self.storage_dtype), ids

    def _windows(self, batch):
        """`[B, L + top]` pieces -> (`[W, B, seq_len + top]` int32 windows, `[W, B]` resets)."""
        batch = tf.cast(batch, tf.int32)
        frames = tf.signal.frame(batch, self.seq_len + self.top_frame_size, self.seq_len, axis=1)
        windows = tf.transpose(frames, [1, 0, 2])
        count = self.piece_len // self.seq_len
        first = tf.equal(tf.range(count), 0)
        return windows, tf.broadcast_to(first[:, None], [count, batch.shape[0]])

    def _shuffle_buffer(self, num_pieces):
        piece_bytes = (self.piece_len + self.top_frame_size) * self.storage_dtype.size
        return int(max(self.batch_size, min(num_pieces, SHUFFLE_BUFFER_BYTES // piece_bytes)))


def _trim_silence(samples):
    """`[n]` samples without their leading and trailing silence (`SILENCE_BELOW_PEAK`).

    A model trained on a file's silent ends learns that silence stays silent: generation that
    falls into silence, or starts from it, then never leaves it.
    """
    level = tf.abs(samples)
    loud = tf.where(level > tf.reduce_max(level) * SILENCE_BELOW_PEAK)[:, 0]
    if_empty = tf.zeros([1], tf.int64)
    first = tf.concat([loud, if_empty], 0)[0]
    end = tf.concat([if_empty, loud], 0)[-1] + 1
    return samples[first:tf.maximum(end, first)]


def _piece_starts(length, piece_len, seq_len, num_pieces):
    """`[num_pieces]` starts of a file's pieces in its `length` (trimmed) samples: whole pieces,
    then its last `piece_len` samples (overlapping the piece before) for a tail of at least
    `seq_len`. Where trimming left fewer pieces than the file's header promised (`num_pieces`,
    counted before anything was decoded), that many pieces spread evenly, overlapping."""
    whole = length // piece_len
    last = tf.maximum(length - piece_len, 0)
    layout = tf.concat([tf.range(whole) * piece_len, [last]], 0)
    fits = tf.cast(whole, tf.int32) + tf.cast(length - whole * piece_len >= seq_len, tf.int32)
    spread = tf.linspace(tf.constant(0.0, tf.float64), tf.cast(last, tf.float64),
                         tf.cast(num_pieces, tf.int32))
    spread = tf.cast(tf.round(spread), tf.int64)
    return tf.cond(tf.maximum(fits, 1) >= tf.cast(num_pieces, tf.int32),
                   lambda: layout[:num_pieces], lambda: spread)


def _fit_length(samples, length):
    """Trim or zero-pad `[n]` samples at the end to `length` (decoders may differ from the
    header's frame count by a few samples, e.g. MP3)."""
    samples = samples[:length]
    return tf.pad(samples, [[0, length - tf.shape(samples, out_type=tf.int64)[0]]])
