"""Cutting melodies into the fixed-length training slices of MusicVAE.

`melody_windows` lists the windows of one melody; `melody_slices` keeps the unique windows with a
note-on over several melodies and counts what it dropped in a `SliceStats`; `drop_seen` drops the
slices already seen elsewhere (in an earlier file, in the training set). Pure numpy: it works on
`audiogen.midi.melody.Melody` objects or on plain class arrays alike.

A window is always `slice_bar * 16` steps. It starts on a bar line of its melody's meter and the
next one starts `hop_bars` bars of that meter later (a plain array is taken as 16-step bars): in
2/4 a 2-bar window is four 2/4 bars and windows start every 8 steps; in 6/8 it is 2 2/3 bars and
windows start every 12 steps (see `audiogen.midi.meters`).
"""
import dataclasses

import numpy as np

from audiogen.midi.encoding import STEPS_PER_BAR, has_note_on


def melody_windows(classes, slice_steps, hop_steps=STEPS_PER_BAR):
    """All windows of `slice_steps` steps lying inside `classes`, every `hop_steps` steps.

    Returns int32 `[num_windows, slice_steps]` (possibly 0 windows).
    """
    classes = np.asarray(classes, np.int32)
    if len(classes) < slice_steps:
        return np.zeros((0, slice_steps), np.int32)
    starts = range(0, len(classes) - slice_steps + 1, hop_steps)
    return np.stack([classes[s:s + slice_steps] for s in starts]).astype(np.int32)


@dataclasses.dataclass
class SliceStats:
    windows: int = 0
    silent: int = 0          # windows without a note-on (dropped)
    duplicates: int = 0      # windows equal to an earlier one (dropped)


def melody_slices(melodies, slice_bar, hop_bars=1):
    """Unique windows of `slice_bar * 16` steps with a hop of `hop_bars` bars over `melodies`.

    `melodies` holds `Melody` objects (bars of their meter, `steps_per_bar`) or int class arrays
    (16-step bars). Windows must lie wholly inside a melody. Windows without a note-on and
    repeats of an earlier window are dropped; order is that of first appearance. Returns
    `(int32 [num_slices, slice_bar * 16], SliceStats)`.
    """
    slice_steps = slice_bar * STEPS_PER_BAR
    stats = SliceStats()
    seen = set()
    kept = []
    for melody in melodies:
        # Duck-typed rather than isinstance(Melody) so that slicing needs no note-seq.
        classes = getattr(melody, "classes", melody)
        bar = getattr(melody, "steps_per_bar", STEPS_PER_BAR)
        windows = melody_windows(classes, slice_steps, hop_bars * bar)
        stats.windows += len(windows)
        for window in windows:
            if not has_note_on(window):
                stats.silent += 1
                continue
            key = window.tobytes()
            if key in seen:
                stats.duplicates += 1
                continue
            seen.add(key)
            kept.append(window)
    array = np.stack(kept) if kept else np.zeros((0, slice_steps), np.int32)
    return array.astype(np.int32), stats


def slice_keys(slices):
    """The set of the rows of int32 `[n, steps]` `slices`, as bytes (what `drop_seen` keeps)."""
    return {row.tobytes() for row in np.asarray(slices, np.int32)}


def drop_seen(slices, seen, remember=True):
    """The rows of int32 `[n, steps]` `slices` that are not in `seen` (a set from `slice_keys`),
    in order; with `remember`, the kept rows are added to `seen`. Only exact repeats count: a
    transposed copy is another slice. Returns `(kept, dropped_count)`."""
    slices = np.asarray(slices, np.int32)
    keep = []
    for i, row in enumerate(slices):
        key = row.tobytes()
        if key in seen:
            continue
        keep.append(i)
        if remember:
            seen.add(key)
    return slices[keep], len(slices) - len(keep)
