"""Attribute measures of melodies in the 90-class encoding: what an attribute vector moves.

Every measure takes one melody `[num_steps]` (a float back) or a batch `[n, num_steps]` (a float64
`[n]` back) of classes (`audiogen.midi.encoding`: 0 = no event, 1 = note-off, 2.. = a note-on of
pitch 21..108), is vectorized over the batch and reads a melody the way `classes_to_notes` does:
a note sounds from its note-on to the next note-off or note-on, and steps before the first
note-on of a slice are silent. Step 0 lies on a bar line (training slices and generated melodies
start on one).

Measures that need a note (`pitch_range`, `mean_pitch`, `syncopation`) give NaN for a melody
without one; `note_density` and `rest_fraction` are always defined.

`ATTRIBUTES` names them in a fixed order; `measure(name, melodies)` looks one up by name.
Pure numpy: no note-seq, no TensorFlow.

Reference: Roberts et al., "A Hierarchical Latent Vector Model for Learning Long-Term Structure
in Music", ICML 2018 (attribute vectors for note density and syncopation, among others).
"""
import numpy as np

from audiogen.midi.encoding import FIRST_PITCH_CLASS, MIN_PITCH, NO_EVENT, NUM_CLASSES, \
    STEPS_PER_BAR


def _classes(melodies):
    """`(int32 [n, num_steps], was_one_melody)`; ValueError for a bad shape or class."""
    array = np.asarray(melodies)
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise ValueError(f"a melody is `[num_steps]` classes and a batch `[n, num_steps]` with "
                         f"num_steps >= 1, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise ValueError("melody classes must be integers")
    array = array.astype(np.int32)
    if array.size and (array.min() < 0 or array.max() >= NUM_CLASSES):
        raise ValueError(f"melody classes must lie in 0..{NUM_CLASSES - 1}, "
                         f"got values {array.min()}..{array.max()}")
    return np.atleast_2d(array), array.ndim == 1


def _result(values, one):
    values = np.asarray(values, np.float64)
    return float(values[0]) if one else values


def _onsets(classes):
    return classes >= FIRST_PITCH_CLASS


def _pitches(classes):
    """MIDI pitch at each note-on, NaN elsewhere (float64 `[n, num_steps]`)."""
    return np.where(_onsets(classes), classes - FIRST_PITCH_CLASS + MIN_PITCH, np.nan)


def _divide(numerator, denominator):
    """`numerator / denominator`, NaN where the denominator is 0 (without a warning)."""
    numerator = np.asarray(numerator, np.float64)
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) > 0)
    return out


def note_density(melodies):
    """Note onsets per bar of 16 sixteenth steps (a 4/4 bar): `onsets * 16 / num_steps`.

    Per 16 steps in every meter, so that slices of different meters compare (a 3/4 melody of
    eighth notes has 8 per 16 steps, as a 4/4 one). 0 for a melody without a note.
    """
    classes, one = _classes(melodies)
    return _result(_onsets(classes).sum(-1) * STEPS_PER_BAR / classes.shape[-1], one)


def pitch_range(melodies):
    """Semitones between the lowest and the highest note (0 for a single pitch; NaN without a
    note)."""
    classes, one = _classes(melodies)
    onsets = _onsets(classes)
    high = np.where(onsets, classes, -1).max(-1)
    low = np.where(onsets, classes, NUM_CLASSES).min(-1)
    return _result(np.where(onsets.any(-1), high - low, np.nan), one)


def mean_pitch(melodies):
    """Mean MIDI pitch of the notes, each note counted once whatever its length (NaN without a
    note)."""
    classes, one = _classes(melodies)
    pitches = _pitches(classes)
    return _result(_divide(np.nansum(pitches, -1), _onsets(classes).sum(-1)), one)


def syncopation(melodies):
    """Share of the onsets that fall on an odd sixteenth step (the second and fourth sixteenth
    of each beat: off the eighth-note grid), in 0..1; NaN without a note.

    Steps are counted from the slice's first step, which lies on a bar line, so in every meter
    the eighth-note grid is the even steps. A melody of eighth and quarter notes has 0; one
    whose notes all start a sixteenth late has 1. It is meant as the paper's "16th note
    syncopation" and does not look at accents or ties across the beat.
    """
    classes, one = _classes(melodies)
    onsets = _onsets(classes)
    odd = onsets[:, 1::2].sum(-1)
    return _result(_divide(odd, onsets.sum(-1)), one)


def sounding(melodies):
    """Bool `[n, num_steps]` (or `[num_steps]`): True where a note sounds at that step."""
    classes, one = _classes(melodies)
    steps = np.arange(classes.shape[-1])
    last_event = np.maximum.accumulate(np.where(classes != NO_EVENT, steps, -1), axis=-1)
    event = np.take_along_axis(classes, np.maximum(last_event, 0), axis=-1)
    out = (last_event >= 0) & (event >= FIRST_PITCH_CLASS)
    return out[0] if one else out


def rest_fraction(melodies):
    """Share of steps at which no note sounds, in 0..1 (1 for a melody without a note).

    A note sounds from its note-on up to the next note-off or note-on; the steps before the
    first note-on of a slice are rests (a note held from before the slice is not known).
    """
    classes, one = _classes(melodies)
    return _result(1.0 - sounding(classes).mean(-1), one)


# Fixed order: attribute vector files store their rows in it.
ATTRIBUTES = {
    "note_density": note_density,
    "pitch_range": pitch_range,
    "mean_pitch": mean_pitch,
    "syncopation": syncopation,
    "rest_fraction": rest_fraction,
}
UNITS = {"note_density": "onsets per 16 steps", "pitch_range": "semitones",
         "mean_pitch": "MIDI pitch", "syncopation": "share of onsets",
         "rest_fraction": "share of steps"}


def measure(name, melodies):
    """The attribute `name` of `melodies`; ValueError naming the valid names for another."""
    if name not in ATTRIBUTES:
        raise ValueError(f"unknown melody attribute {name!r}; valid: {', '.join(ATTRIBUTES)}")
    return ATTRIBUTES[name](melodies)


def measure_all(melodies):
    """`{name: float64 [n]}` of every attribute of a batch `[n, num_steps]`."""
    classes, _ = _classes(melodies)
    return {name: function(classes) for name, function in ATTRIBUTES.items()}
