"""The melody encoding: 90 classes per sixteenth-note step, 16 steps per 4/4 bar.

* `NO_EVENT` (0): nothing happens; the sounding note is held, or the rest goes on.
* `NOTE_OFF` (1): the sounding note stops.
* `2 + (pitch - 21)` for pitches 21 (A0) .. 108 (C8), the 88 piano keys: a new note starts
  (and ends the note sounding before it).

This module owns the constants, the class <-> pitch mapping, validation and the decoding of
classes into notes. It imports neither note-seq nor TensorFlow: the config, the models, the data
pipelines and the plots take their constants from here.

Reference: Roberts et al., "A Hierarchical Latent Vector Model for Learning Long-Term Structure
in Music", ICML 2018 (the 90-class melody encoding).
"""
import numpy as np

# === Encoding ===
NO_EVENT = 0
NOTE_OFF = 1
FIRST_PITCH_CLASS = 2
MIN_PITCH = 21
MAX_PITCH = 108
NUM_PITCHES = MAX_PITCH - MIN_PITCH + 1          # 88
NUM_CLASSES = FIRST_PITCH_CLASS + NUM_PITCHES    # 90

# === Time grid ===
STEPS_PER_QUARTER = 4
STEPS_PER_BAR = 16
GAP_BARS = 1
DEFAULT_QPM = 120.0
DEFAULT_VELOCITY = 80


def pitch_to_class(pitch):
    """Class of a MIDI pitch in 21..108 (ValueError outside)."""
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise ValueError(f"pitch {pitch} is outside the encoded range {MIN_PITCH}..{MAX_PITCH}")
    return FIRST_PITCH_CLASS + int(pitch) - MIN_PITCH


def class_to_pitch(cls):
    """MIDI pitch of a note-on class (ValueError for NO_EVENT, NOTE_OFF or out of range)."""
    if not FIRST_PITCH_CLASS <= cls < NUM_CLASSES:
        raise ValueError(
            f"class {cls} is not a note-on class ({FIRST_PITCH_CLASS}..{NUM_CLASSES - 1})")
    return int(cls) - FIRST_PITCH_CLASS + MIN_PITCH


def validate_classes(classes):
    """`classes` as an int32 array `[num_steps]`; ValueError when not 1-D or out of 0..89."""
    array = np.asarray(classes)
    if array.ndim != 1:
        raise ValueError(f"a melody must be a 1-D sequence of classes, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise ValueError("melody classes must be integers")
    array = array.astype(np.int32)
    if array.size and (array.min() < 0 or array.max() >= NUM_CLASSES):
        raise ValueError(f"melody classes must lie in 0..{NUM_CLASSES - 1}, "
                         f"got values {array.min()}..{array.max()}")
    return array


def has_note_on(classes):
    """True where a slice (last axis) holds at least one note-on."""
    return np.any(np.asarray(classes) >= FIRST_PITCH_CLASS, axis=-1)


def always_hold_accuracy(classes):
    """The accuracy of predicting `NO_EVENT` (hold the note or the rest) at every step of
    `classes` (any shape): the share of its steps that are `NO_EVENT`, the baseline a model's
    next-step accuracy must beat. NaN when `classes` is empty."""
    classes = np.asarray(classes)
    return float(np.mean(classes == NO_EVENT)) if classes.size else float("nan")


def classes_to_notes(classes):
    """`[(pitch, start_step, end_step)]` of a melody's classes (a note lasts to the end)."""
    classes = validate_classes(classes)
    notes = []
    current = None
    for step, cls in enumerate(classes):
        if cls == NO_EVENT:
            continue
        if current is not None:
            notes.append((current[0], current[1], step))
            current = None
        if cls >= FIRST_PITCH_CLASS:
            current = (int(cls) - FIRST_PITCH_CLASS + MIN_PITCH, step)
    if current is not None:
        notes.append((current[0], current[1], len(classes)))
    return notes
