"""Piano rolls of melodies: the picture shared by the training summaries and the plots."""
import numpy as np

from audiogen.midi.encoding import MAX_PITCH, NUM_PITCHES, classes_to_notes


def piano_roll(classes):
    """`int [T]` melody classes -> `uint8 [88, T]` roll, 255 where a note sounds.

    Row 0 is the highest key (C8), so the roll reads like a score when drawn as an image.
    """
    classes = np.asarray(classes)
    roll = np.zeros((NUM_PITCHES, len(classes)), np.uint8)
    for pitch, start, end in classes_to_notes(classes):
        roll[MAX_PITCH - pitch, start:end] = 255
    return roll
