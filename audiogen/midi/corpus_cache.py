"""The on-disk cache of corpus extractions: its folder, its key, and reading / writing entries.

An entry is one `.npz` holding the int32 slices and the `ExtractionReport` as JSON. Its name
carries a hash of the files (path, size, mtime) and of the settings that shape the result (the
meter rule among them), so a changed file or setting simply misses the cache; unreadable entries
are ignored with a warning.
"""
import hashlib
import json
import os
import warnings

import numpy as np

from audiogen.files import atomic_path, user_cache_dir
from audiogen.midi.report import ExtractionReport

CACHE_DIR_NAME = ".audiogen_cache"
# Bump when a change to the extraction would change its output: old cache entries stop matching.
EXTRACTION_VERSION = 3


def default_cache_dir(midi_dir):
    """`<midi_dir>/.audiogen_cache` when writable, else `$XDG_CACHE_HOME or ~/.cache`/audiogen."""
    local = os.path.join(os.fspath(midi_dir), CACHE_DIR_NAME)
    try:
        os.makedirs(local, exist_ok=True)
        if os.access(local, os.W_OK):
            return local
    except OSError:
        pass
    return user_cache_dir()


def corpus_cache_key(midi_dir, names, slice_bar, max_slices_per_file, training, seed,
                     meter_rule=None):
    """Hash of the files (path, size, mtime) and the settings that shape the result.

    `meter_rule` is the canonical `meters` setting (`MeterRule.setting`)."""
    files = []
    for name in names:
        path = os.path.realpath(os.path.join(midi_dir, name))
        st = os.stat(path)
        files.append([path, st.st_size, st.st_mtime_ns])
    payload = json.dumps({"version": EXTRACTION_VERSION, "files": files, "slice_bar": slice_bar,
                          "max_slices_per_file": max_slices_per_file,
                          "training": bool(training), "seed": int(seed),
                          "meters": meter_rule}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def cache_path(folder, key, slice_bar, training):
    """The entry file for `key` in `folder`."""
    split = "train" if training else "eval"
    return os.path.join(os.fspath(folder), f"melodies-{slice_bar}bar-{split}-{key[:24]}.npz")


def load_cache(path):
    """`(slices, report)` of the entry at `path`, or None (with a warning) when unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            slices = data["slices"].astype(np.int32)
            report = ExtractionReport.from_dict(json.loads(str(data["report"])))
    except Exception as e:  # corrupt or foreign file: extract again
        warnings.warn(f"ignoring unreadable melody cache {path}: {e}")
        return None
    return slices, report


def save_cache(path, slices, report):
    """Write an entry atomically; False (with a warning) when the folder is not writable."""
    try:
        with atomic_path(path, ".npz") as tmp:
            np.savez(tmp, slices=slices, report=np.array(json.dumps(report.to_dict())))
    except OSError as e:
        warnings.warn(f"could not write melody cache {path}: {e}")
        return False
    return True
