"""audiogen.midi: MIDI files <-> NoteSequences <-> 90-class melody tensors (note-seq glue).

`audiogen.midi.melody`: encoding constants, extraction rules, slicing, melody -> NoteSequence.
`audiogen.midi.files`: reading/writing MIDI files, corpus extraction with cache and report.
Names are imported lazily (note-seq takes ~2 s to import).
"""
_PUBLIC = {
    "NUM_CLASSES": "audiogen.midi.melody",
    "NO_EVENT": "audiogen.midi.melody",
    "NOTE_OFF": "audiogen.midi.melody",
    "FIRST_PITCH_CLASS": "audiogen.midi.melody",
    "MIN_PITCH": "audiogen.midi.melody",
    "MAX_PITCH": "audiogen.midi.melody",
    "STEPS_PER_BAR": "audiogen.midi.melody",
    "Melody": "audiogen.midi.melody",
    "extract_melodies": "audiogen.midi.melody",
    "melody_slices": "audiogen.midi.melody",
    "melody_to_note_sequence": "audiogen.midi.melody",
    "read_midi": "audiogen.midi.files",
    "write_midi": "audiogen.midi.files",
    "melodies_from_midi": "audiogen.midi.files",
    "midi_to_slices": "audiogen.midi.files",
    "first_melody_slice": "audiogen.midi.files",
    "extract_corpus": "audiogen.midi.files",
    "ExtractionReport": "audiogen.midi.files",
    "MidiReadError": "audiogen.midi.files",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'audiogen.midi' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_PUBLIC[name]), name)
