"""MIDI files <-> NoteSequences <-> melody tensors, and corpus extraction with an on-disk cache.

Reading: `read_midi`, `melodies_from_midi`, `midi_to_slices`, `first_melody_slice`.
Writing: `write_midi` (atomic: a temporary file, then `os.replace`).
Corpora: `extract_corpus` walks a directory (recursively, `.mid` / `.midi`, sorted), extracts the
melody slices of every file (in parallel with `num_workers` > 1), keeps at most
`max_slices_per_file` per file, caches the result as `.npz`, and returns it with an
`ExtractionReport`. When nothing can be extracted it raises `ValueError` with the counts of files
found, parsed and rejected by reason (it never hangs or stops silently).

This module does not import TensorFlow, so extraction workers start quickly.
"""
import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import sys
import time
import warnings

import numpy as np

from audiogen.files import atomic_path
from audiogen.midi import melody as mel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import note_seq

MIDI_EXTENSIONS = (".mid", ".midi")
CACHE_DIR_NAME = ".audiogen_cache"
# Bump when a change to the extraction would change its output: old cache entries stop matching.
EXTRACTION_VERSION = 1

REASON_UNPARSABLE = "unparsable MIDI"
REASON_NO_4_4 = "no 4/4 segment"
REASON_UNQUANTIZABLE = "4/4 segments could not be quantized"
REASON_NO_MELODY = "no melody (no non-drum note in 21..108 in 4/4)"
REASON_TOO_SHORT = "no melody long enough for one slice"
REASON_SILENT = "only slices without a note-on"
REASON_ERROR = "extraction error"
REASONS = (REASON_UNPARSABLE, REASON_NO_4_4, REASON_UNQUANTIZABLE, REASON_NO_MELODY,
           REASON_TOO_SHORT, REASON_SILENT, REASON_ERROR)


class MidiReadError(ValueError):
    """A MIDI file that cannot be read or parsed."""


# === Single files ===

def read_midi(path):
    """NoteSequence of the MIDI file at `path` (MidiReadError when it cannot be parsed)."""
    path = os.fspath(path)
    try:
        return note_seq.midi_file_to_note_sequence(path)
    except Exception as e:  # pretty_midi/mido raise many types on bad data
        raise MidiReadError(f"{path}: cannot parse MIDI ({type(e).__name__}: {e})") from None


def melodies_from_midi(path, gap_bars=mel.GAP_BARS):
    """The monophonic melodies (`audiogen.midi.melody.Melody`) of a MIDI file, in source order.

    See `audiogen.midi.melody` for the rules. Raises MidiReadError when the file can't be parsed.
    """
    melodies, _ = mel.extract_melodies(read_midi(path), gap_bars=gap_bars)
    return melodies


def midi_to_slices(path, slice_bar):
    """All unique `slice_bar`-bar slices (1-bar hop, at least one note-on) of a MIDI file.

    Returns int32 `[num_slices, slice_bar * 16]` (possibly empty).
    """
    slices, _ = mel.melody_slices(melodies_from_midi(path), slice_bar)
    return slices


def write_midi(classes_or_list, path, qpm=mel.DEFAULT_QPM, **kwargs):
    """Write one melody, or several one after another, as a MIDI file (atomically).

    Args:
        classes_or_list: int `[num_steps]` classes, or a list / `[n, num_steps]` array of them.
        path: output `.mid` path; parent folders are created.
        qpm: tempo. Other keyword arguments go to `melody_to_note_sequence` (velocity, program,
            instrument, gap_bars).
    Returns the path.
    """
    path = os.fspath(path)
    sequence = mel.melody_to_note_sequence(_to_numpy(classes_or_list), qpm=qpm, **kwargs)
    with atomic_path(path, ".mid") as tmp:
        note_seq.note_sequence_to_midi_file(sequence, tmp)
    return path


def _to_numpy(x):
    if hasattr(x, "numpy"):
        x = x.numpy()
    if isinstance(x, (list, tuple)):
        return [_to_numpy(v) if not np.isscalar(v) else v for v in x]
    return x


def _no_melody_reason(stats):
    if stats.segments == 0:
        return f"{REASON_NO_MELODY}: the file has no notes"
    if stats.segments_4_4 == 0:
        meters = ", ".join(f"{k} x{v}" for k, v in sorted(stats.meters.items()))
        return f"{REASON_NO_4_4} (found: {meters})"
    if stats.segments_unquantizable == stats.segments_4_4:
        return REASON_UNQUANTIZABLE
    detail = []
    if stats.drum_notes:
        detail.append(f"{stats.drum_notes} drum notes skipped")
    if stats.out_of_range_notes:
        detail.append(f"{stats.out_of_range_notes} notes outside 21..108 dropped")
    return REASON_NO_MELODY + (f" ({'; '.join(detail)})" if detail else "")


def first_melody_slice(path, num_steps):
    """The first usable `num_steps`-step slice of a MIDI file, for reconstruction/interpolation.

    Melodies are searched in source order (segment, start, instrument) and windows with a 1-bar
    hop; the first window holding a note-on wins. Returns `(classes int32 [num_steps], message)`
    where the message names the melody chosen. Raises ValueError naming the file and the reason
    when there is none (MidiReadError when it can't be parsed).
    """
    path = os.fspath(path)
    melodies, stats = mel.extract_melodies(read_midi(path))
    if not melodies:
        raise ValueError(f"{path}: no melody to use: {_no_melody_reason(stats)}")
    for index, melody in enumerate(melodies):
        windows = mel.melody_windows(melody.classes, num_steps)
        for w, window in enumerate(windows):
            if mel.has_note_on(window):
                bar = melody.start_bar + w + 1
                last_bar = melody.start_bar + w + -(-num_steps // mel.STEPS_PER_BAR)
                message = (f"{path}: melody {index + 1} of {len(melodies)}: instrument "
                           f"{melody.instrument} (program {melody.program}), 4/4 segment "
                           f"{melody.segment} at {melody.segment_start_time:.2f} s, bars "
                           f"{bar}-{last_bar} of the segment ({num_steps} steps)")
                return window, message
    longest = max(len(m.classes) for m in melodies)
    raise ValueError(f"{path}: no melody of at least {num_steps} steps "
                     f"({num_steps / mel.STEPS_PER_BAR:g} bars); {len(melodies)} melodies found, "
                     f"the longest has {longest} steps ({longest // mel.STEPS_PER_BAR} bars)")


# === Corpus extraction ===

@dataclasses.dataclass
class FileResult:
    """Outcome of one file: its kept slices, or the reason it gave none."""
    name: str
    slices: np.ndarray
    reason: str = None
    parsed: bool = True
    stats: dict = dataclasses.field(default_factory=dict)


def _stable_hash(text):
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16)


def extract_file(path, slice_bar, max_slices_per_file=None, training=True, seed=0, name=None):
    """Slices of one file for a corpus: unique, with a note-on, at most `max_slices_per_file`.

    In training a random subset is kept (seeded by `seed` and the file `name`, so independent
    of worker scheduling); otherwise the first N. Never raises: failures become `reason`.
    """
    name = name if name is not None else os.fspath(path)
    slice_steps = slice_bar * mel.STEPS_PER_BAR
    empty = np.zeros((0, slice_steps), np.int32)
    try:
        sequence = read_midi(path)
    except MidiReadError:
        return FileResult(name, empty, REASON_UNPARSABLE, parsed=False)
    try:
        melodies, mstats = mel.extract_melodies(sequence)
        slices, sstats = mel.melody_slices(melodies, slice_bar)
    except Exception as e:  # a bad file must not stop a corpus
        return FileResult(name, empty, f"{REASON_ERROR} ({type(e).__name__})")
    stats = {**dataclasses.asdict(mstats), "windows": sstats.windows,
             "silent_slices": sstats.silent, "duplicate_slices": sstats.duplicates,
             "capped_slices": 0}
    reason = None
    if not melodies:
        reason = _no_melody_reason(mstats)
        reason = next(r for r in REASONS if reason.startswith(r))
    elif sstats.windows == 0:
        reason = REASON_TOO_SHORT
    elif len(slices) == 0:
        reason = REASON_SILENT
    if max_slices_per_file is not None and len(slices) > max_slices_per_file:
        stats["capped_slices"] = len(slices) - max_slices_per_file
        if training:
            rng = np.random.default_rng([int(seed) % 2**32, _stable_hash(name)])
            keep = np.sort(rng.choice(len(slices), max_slices_per_file, replace=False))
            slices = slices[keep]
        else:
            slices = slices[:max_slices_per_file]
    return FileResult(name, slices, reason, stats=stats)


def _extract_task(args):
    return extract_file(*args)


@dataclasses.dataclass
class ExtractionReport:
    """What a corpus extraction read, kept and rejected (and why)."""
    midi_dir: str = ""
    slice_bar: int = 2
    max_slices_per_file: int = None
    training: bool = True
    seed: int = 0
    files_found: int = 0
    files_parsed: int = 0
    files_used: int = 0
    rejected: dict = dataclasses.field(default_factory=dict)        # reason -> files
    rejected_files: dict = dataclasses.field(default_factory=dict)  # reason -> first names
    segments: int = 0
    segments_4_4: int = 0
    meters: dict = dataclasses.field(default_factory=dict)
    melodies: int = 0
    drum_notes: int = 0
    out_of_range_notes: int = 0
    windows: int = 0
    silent_slices: int = 0
    duplicate_slices: int = 0
    capped_slices: int = 0
    examples: int = 0
    seconds: float = 0.0
    num_workers: int = 1
    from_cache: bool = False
    cache_path: str = None

    @property
    def files_rejected(self):
        return sum(self.rejected.values())

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def summary(self):
        """One paragraph for logs and error messages."""
        rejected = "; ".join(f"{n} {r}" for r, n in sorted(self.rejected.items())) or "none"
        meters = ", ".join(f"{k} x{v}" for k, v in sorted(self.meters.items())) or "none"
        source = f"cache {self.cache_path}" if self.from_cache else \
            f"{self.seconds:.1f} s with {self.num_workers} worker(s)"
        return (f"{self.midi_dir}: {self.files_found} MIDI files found, {self.files_parsed} "
                f"parsed, {self.files_used} used, {self.files_rejected} rejected ({rejected}); "
                f"segments: {self.segments} (meters: {meters}), {self.melodies} melodies, "
                f"{self.windows} windows of {self.slice_bar} bars ({self.silent_slices} silent "
                f"and {self.duplicate_slices} duplicate dropped, {self.capped_slices} over "
                f"max_slices_per_file={self.max_slices_per_file}); {self.examples} examples "
                f"({source})")


def list_midi_files(midi_dir):
    """Relative paths (with '/') of the .mid/.midi files under `midi_dir`, sorted.

    Hidden folders (such as the cache folder) are skipped.
    """
    midi_dir = os.fspath(midi_dir)
    if not os.path.isdir(midi_dir):
        raise FileNotFoundError(f"MIDI folder not found: {midi_dir}")
    names = []
    for root, dirs, files in os.walk(midi_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if f.lower().endswith(MIDI_EXTENSIONS) and not f.startswith("."):
                rel = os.path.relpath(os.path.join(root, f), midi_dir)
                names.append(rel.replace(os.sep, "/"))
    return sorted(names)


def default_cache_dir(midi_dir):
    """`<midi_dir>/.audiogen_cache` when writable, else `$XDG_CACHE_HOME or ~/.cache`/audiogen."""
    local = os.path.join(os.fspath(midi_dir), CACHE_DIR_NAME)
    try:
        os.makedirs(local, exist_ok=True)
        if os.access(local, os.W_OK):
            return local
    except OSError:
        pass
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "audiogen")


def corpus_cache_key(midi_dir, names, slice_bar, max_slices_per_file, training, seed):
    """Hash of the files (path, size, mtime) and the settings that shape the result."""
    files = []
    for name in names:
        path = os.path.realpath(os.path.join(midi_dir, name))
        st = os.stat(path)
        files.append([path, st.st_size, st.st_mtime_ns])
    payload = json.dumps({"version": EXTRACTION_VERSION, "files": files, "slice_bar": slice_bar,
                          "max_slices_per_file": max_slices_per_file,
                          "training": bool(training), "seed": int(seed)}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _load_cache(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            slices = data["slices"].astype(np.int32)
            report = ExtractionReport.from_dict(json.loads(str(data["report"])))
    except Exception as e:  # corrupt or foreign file: extract again
        warnings.warn(f"ignoring unreadable melody cache {path}: {e}")
        return None
    return slices, report


def _save_cache(path, slices, report):
    try:
        with atomic_path(path, ".npz") as tmp:
            np.savez(tmp, slices=slices, report=np.array(json.dumps(report.to_dict())))
    except OSError as e:
        warnings.warn(f"could not write melody cache {path}: {e}")
        return False
    return True


# Start method of extraction workers. On Linux "fork": workers start at once (no re-import of
# note-seq, no re-run of an unguarded __main__ script) and run only note-seq/numpy code, never
# TensorFlow, so threads TensorFlow may have started in the parent are not needed in them.
# Elsewhere "spawn" (fork is unsafe on macOS); scripts then need `if __name__ == "__main__":`.
MP_START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"


def _mp_context():
    return multiprocessing.get_context(MP_START_METHOD)


def _run_tasks(tasks, num_workers):
    if num_workers is None or num_workers <= 1 or len(tasks) < 2:
        return [_extract_task(t) for t in tasks]
    workers = min(int(num_workers), len(tasks))
    chunksize = max(1, len(tasks) // (workers * 8))
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=_mp_context()) as pool:
        return list(pool.map(_extract_task, tasks, chunksize=chunksize))


def extract_corpus(midi_dir, slice_bar, max_slices_per_file=None, training=True, seed=0,
                   num_workers=1, cache_dir=None, files=None, use_cache=True):
    """Melody slices of every MIDI file under `midi_dir`, cached on disk.

    Args:
        midi_dir: folder searched recursively for .mid/.midi files (sorted).
        slice_bar: bars per slice (`slice_bar * 16` steps).
        max_slices_per_file: keep at most this many slices per file (None: all); a random seeded
            subset when `training`, else the first N.
        seed: seed of the per-file random subsets.
        num_workers: processes for extraction; 0 or 1 extracts in this process.
        cache_dir: folder for the cache; default `<midi_dir>/.audiogen_cache` when writable,
            else `~/.cache/audiogen`.
        files: optional subset of the relative paths of `list_midi_files(midi_dir)`.
        use_cache: False to neither read nor write the cache.
    Returns:
        `(slices, report)`: int32 `[num_examples, slice_bar * 16]` (files in sorted order) and an
        `ExtractionReport` (`from_cache=True` when it was loaded from the cache).
    Raises:
        ValueError when no example can be extracted, with the counts of files found, parsed and
        rejected by reason. FileNotFoundError when `midi_dir` does not exist.
    """
    midi_dir = os.fspath(midi_dir)
    if not isinstance(slice_bar, int) or slice_bar < 1:
        raise ValueError(f"slice_bar must be a positive integer, got {slice_bar!r}")
    if max_slices_per_file is not None and max_slices_per_file < 1:
        raise ValueError(f"max_slices_per_file must be positive or None, got "
                         f"{max_slices_per_file!r}")
    names = list_midi_files(midi_dir) if files is None else sorted(files)
    if not names:
        raise ValueError(f"no MIDI files (.mid, .midi) found under {midi_dir}: 0 files found, "
                         f"0 parsed, 0 examples")
    settings = dict(slice_bar=slice_bar, max_slices_per_file=max_slices_per_file,
                    training=bool(training), seed=int(seed))
    cache_path = None
    if use_cache:
        key = corpus_cache_key(midi_dir, names, **settings)
        folder = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir(midi_dir)
        cache_path = os.path.join(
            folder, f"melodies-{slice_bar}bar-{'train' if training else 'eval'}-{key[:24]}.npz")
        if os.path.exists(cache_path):
            loaded = _load_cache(cache_path)
            if loaded is not None:
                slices, report = loaded
                report.from_cache, report.cache_path = True, cache_path
                _raise_if_empty(slices, report)
                return slices, report

    start = time.perf_counter()
    tasks = [(os.path.join(midi_dir, n), slice_bar, max_slices_per_file, training, seed, n)
             for n in names]
    results = _run_tasks(tasks, num_workers)
    report = ExtractionReport(midi_dir=midi_dir, files_found=len(names),
                              num_workers=max(1, int(num_workers or 1)), **settings)
    kept = []
    for result in results:
        report.files_parsed += result.parsed
        if len(result.slices):
            report.files_used += 1
            kept.append(result.slices)
        if result.reason is not None:
            report.rejected[result.reason] = report.rejected.get(result.reason, 0) + 1
            names_for_reason = report.rejected_files.setdefault(result.reason, [])
            if len(names_for_reason) < 10:
                names_for_reason.append(result.name)
        s = result.stats
        for field in ("segments", "segments_4_4", "melodies", "drum_notes",
                      "out_of_range_notes", "windows", "silent_slices", "duplicate_slices",
                      "capped_slices"):
            setattr(report, field, getattr(report, field) + s.get(field, 0))
        for meter, count in s.get("meters", {}).items():
            report.meters[meter] = report.meters.get(meter, 0) + count
    slice_steps = slice_bar * mel.STEPS_PER_BAR
    slices = np.concatenate(kept).astype(np.int32) if kept else \
        np.zeros((0, slice_steps), np.int32)
    report.examples = len(slices)
    report.seconds = time.perf_counter() - start
    if use_cache:
        report.cache_path = cache_path
        if not _save_cache(cache_path, slices, report):
            report.cache_path = None
    _raise_if_empty(slices, report)
    return slices, report


def _raise_if_empty(slices, report):
    if len(slices):
        return
    raise ValueError(
        f"no {report.slice_bar}-bar melody slices could be extracted. {report.summary()}. "
        f"Only 4/4 segments are used; a melody is a monophonic line of pitches 21..108 that "
        f"ends at a rest of 1 bar, and a slice needs {report.slice_bar} bars of it.")
