"""Corpus extraction: the melody slices of every MIDI file under a folder, in parallel, cached.

`extract_corpus` walks a directory (recursively, `.mid` / `.midi`, sorted), extracts the melody
slices of every file in the meters its `meters` rule uses (`audiogen.midi.meters`; `extract_file`,
in worker processes with `num_workers` > 1), drops the slices that repeat one an earlier file
kept (in the files' sorted order), keeps at most `max_slices_per_file` per file (None: every
window), caches the result (`audiogen.midi.corpus_cache`) and returns it with an
`ExtractionReport` that counts what was dropped and why. When
nothing can be extracted it raises `ValueError` with the counts of files found, parsed and
rejected by reason (it never hangs or stops silently).

This module does not import TensorFlow, so extraction workers start quickly.
"""
import concurrent.futures
import dataclasses
import multiprocessing
import os
import sys
import time

import numpy as np

from audiogen.hashing import stable_uint32
from audiogen.midi.corpus_cache import cache_path, corpus_cache_key, default_cache_dir, \
    load_cache, save_cache
from audiogen.midi.encoding import STEPS_PER_BAR
from audiogen.midi.files import MidiReadError, read_midi
from audiogen.midi.melody import extract_melodies
from audiogen.midi.meters import MeterRule
from audiogen.midi.rejections import METERS_HINT, REASON_ERROR, REASON_REPEATS, \
    REASON_SILENT, REASON_TOO_SHORT, REASON_UNPARSABLE, no_melody_reason, reason_category
from audiogen.midi.report import ExtractionReport
from audiogen.midi.slicing import drop_seen, melody_slices, slice_keys

MIDI_EXTENSIONS = (".mid", ".midi")

# Start method of extraction workers. On Linux "fork": workers start at once (no re-import of
# note-seq, no re-run of an unguarded __main__ script) and run only note-seq/numpy code, never
# TensorFlow, so threads TensorFlow may have started in the parent are not needed in them.
# Elsewhere "spawn" (fork is unsafe on macOS); scripts then need `if __name__ == "__main__":`.
MP_START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"


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


# === One file ===

@dataclasses.dataclass
class FileResult:
    """Outcome of one file: its kept slices, or the reason it gave none."""
    name: str
    slices: np.ndarray
    reason: str = None
    parsed: bool = True
    stats: dict = dataclasses.field(default_factory=dict)


def extract_file(path, slice_bar, max_slices_per_file=None, training=True, seed=0, name=None,
                 meters=None):
    """Slices of one file for a corpus: unique, with a note-on, at most `max_slices_per_file`.

    `meters`: the meter rule or its setting (see `audiogen.midi.meters`). In training a random
    subset is kept (seeded by `seed` and the file `name`, so independent of worker scheduling);
    otherwise the first N. Never raises: failures become `reason`.
    """
    name = name if name is not None else os.fspath(path)
    empty = np.zeros((0, slice_bar * STEPS_PER_BAR), np.int32)
    try:
        sequence = read_midi(path)
    except MidiReadError:
        return FileResult(name, empty, REASON_UNPARSABLE, parsed=False)
    try:
        melodies, mstats = extract_melodies(sequence, meters=meters)
        slices, sstats = melody_slices(melodies, slice_bar)
    except Exception as e:  # a bad file must not stop a corpus
        return FileResult(name, empty, f"{REASON_ERROR} ({type(e).__name__})")
    stats = {**dataclasses.asdict(mstats), "windows": sstats.windows,
             "silent_slices": sstats.silent, "duplicate_slices": sstats.duplicates,
             "repeated_slices": 0, "capped_slices": 0}
    reason = None
    if not melodies:
        reason = reason_category(no_melody_reason(mstats))
    elif sstats.windows == 0:
        reason = REASON_TOO_SHORT
    elif len(slices) == 0:
        reason = REASON_SILENT
    result = FileResult(name, slices, reason, stats=stats)
    _cap(result, max_slices_per_file, training, seed)
    return result


def _cap(result, max_slices, training, seed):
    """Keep at most `max_slices` (None: all) of `result`'s slices (see `_cap_slices`)."""
    if max_slices is not None and len(result.slices) > max_slices:
        result.stats["capped_slices"] = len(result.slices) - max_slices
        result.slices = _cap_slices(result.slices, max_slices, training, seed, result.name)


def _keep_new(result, seen, max_slices, training, seed):
    """Drop the slices of `result` that an earlier file kept (`seen`), cap the rest, and add
    what is kept to `seen`. Capping after the repeats are gone keeps up to `max_slices` new
    slices per file; a slice capped away is no repeat for a later file."""
    if not len(result.slices):
        return
    result.slices, repeats = drop_seen(result.slices, seen, remember=False)
    result.stats["repeated_slices"] = repeats
    if not len(result.slices) and result.reason is None:
        result.reason = REASON_REPEATS
    _cap(result, max_slices, training, seed)
    seen.update(slice_keys(result.slices))


def _cap_slices(slices, max_slices, training, seed, name):
    """A seeded random subset (kept in source order) in training, else the first `max_slices`."""
    if not training:
        return slices[:max_slices]
    rng = np.random.default_rng([int(seed) % 2**32, stable_uint32(name)])
    keep = np.sort(rng.choice(len(slices), max_slices, replace=False))
    return slices[keep]


# === Worker pool ===

def _extract_task(args):
    return extract_file(*args)


def _mp_context():
    return multiprocessing.get_context(MP_START_METHOD)


def _run_tasks(tasks, num_workers):
    if num_workers is None or num_workers <= 1 or len(tasks) < 2:
        return [_extract_task(t) for t in tasks]
    workers = min(int(num_workers), len(tasks))
    chunksize = max(1, len(tasks) // (workers * 8))
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=_mp_context()) as pool:
        return list(pool.map(_extract_task, tasks, chunksize=chunksize))


# === Corpus ===

def extract_corpus(midi_dir, slice_bar, max_slices_per_file=None, training=True, seed=0,
                   num_workers=1, cache_dir=None, files=None, use_cache=True, meters=None):
    """Melody slices of every MIDI file under `midi_dir`, cached on disk.

    Args:
        midi_dir: folder searched recursively for .mid/.midi files (sorted).
        slice_bar: bars per slice (`slice_bar * 16` steps).
        max_slices_per_file: keep at most this many slices per file (None: every window, a
            window starting at every bar line of the melody's meter); a random seeded subset
            when `training`, else the first N. Slices that repeat one of an earlier file are
            dropped first.
        seed: seed of the per-file random subsets.
        num_workers: processes for extraction; 0 or 1 extracts in this process.
        cache_dir: folder for the cache; default `<midi_dir>/.audiogen_cache` when writable,
            else `~/.cache/audiogen`.
        files: optional subset of the relative paths of `list_midi_files(midi_dir)`.
        use_cache: False to neither read nor write the cache.
        meters: the meters used (config key `meters`): None for bars of 16 steps (4/4, 2/2,
            ...), a list such as `["2/4", "6/8"]` to add those, or "any"; see
            `audiogen.midi.meters` for how windows are cut in other meters. Part of the cache
            key.
    Returns:
        `(slices, report)`: int32 `[num_examples, slice_bar * 16]` (files in sorted order) and an
        `ExtractionReport` (`from_cache=True` when it was loaded from the cache).
    Raises:
        ValueError when no example can be extracted, with the counts of files found, parsed and
        rejected by reason. FileNotFoundError when `midi_dir` does not exist.
    """
    midi_dir = os.fspath(midi_dir)
    _check_settings(slice_bar, max_slices_per_file)
    rule = MeterRule.from_setting(meters)
    names = list_midi_files(midi_dir) if files is None else sorted(files)
    if not names:
        raise ValueError(f"no MIDI files (.mid, .midi) found under {midi_dir}: 0 files found, "
                         f"0 parsed, 0 examples")
    settings = dict(slice_bar=slice_bar, max_slices_per_file=max_slices_per_file,
                    training=bool(training), seed=int(seed), meter_rule=rule.setting)
    path = None
    if use_cache:
        key = corpus_cache_key(midi_dir, names, **settings)
        folder = cache_dir if cache_dir is not None else default_cache_dir(midi_dir)
        path = cache_path(folder, key, slice_bar, training)
        loaded = load_cache(path) if os.path.exists(path) else None
        if loaded is not None:
            slices, report = loaded
            report.from_cache, report.cache_path = True, path
            _raise_if_empty(slices, report)
            return slices, report

    slices, report = _extract_files(midi_dir, names, num_workers, settings)
    if use_cache:
        # The saved report names its own entry, as a report loaded from it does.
        report.cache_path = path
        if not save_cache(path, slices, report):
            report.cache_path = None
    _raise_if_empty(slices, report)
    return slices, report


def _check_settings(slice_bar, max_slices_per_file):
    if not isinstance(slice_bar, int) or slice_bar < 1:
        raise ValueError(f"slice_bar must be a positive integer, got {slice_bar!r}")
    if max_slices_per_file is not None and (
            not isinstance(max_slices_per_file, int) or isinstance(max_slices_per_file, bool)
            or max_slices_per_file < 1):
        raise ValueError(f"max_slices_per_file must be a positive integer, or None for every "
                         f"window, got {max_slices_per_file!r}")


def _extract_files(midi_dir, names, num_workers, settings):
    """`(slices, report)` of the files `names` of `midi_dir`, extracted now."""
    start = time.perf_counter()
    # Workers return every slice of their file: repeats of other files and the cap are settled
    # here, in the files' sorted order, so the result does not depend on the workers.
    tasks = [(os.path.join(midi_dir, n), settings["slice_bar"], None, settings["training"],
              settings["seed"], n, settings["meter_rule"]) for n in names]
    results = _run_tasks(tasks, num_workers)
    report = ExtractionReport(midi_dir=midi_dir, files_found=len(names),
                              num_workers=max(1, int(num_workers or 1)), **settings)
    kept = []
    seen = set()
    for result in results:
        _keep_new(result, seen, settings["max_slices_per_file"], settings["training"],
                  settings["seed"])
        report.add(result)
        if len(result.slices):
            kept.append(result.slices)
    slice_steps = settings["slice_bar"] * STEPS_PER_BAR
    slices = np.concatenate(kept).astype(np.int32) if kept else \
        np.zeros((0, slice_steps), np.int32)
    report.examples = len(slices)
    report.seconds = time.perf_counter() - start
    return slices, report


def _raise_if_empty(slices, report):
    if len(slices):
        return
    raise ValueError(
        f"no {report.slice_bar}-bar melody slices could be extracted. {report.summary()}. "
        f"Meters used: {MeterRule.from_setting(report.meter_rule).describe()} ({METERS_HINT}); "
        f"a melody is a monophonic line of pitches 21..108 that ends at a rest of 1 bar, and a "
        f"slice needs {report.slice_bar * STEPS_PER_BAR} sixteenth steps of it.")
