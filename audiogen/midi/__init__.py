"""audiogen.midi: MIDI files <-> NoteSequences <-> 90-class melody tensors (note-seq glue).

* `encoding`: the 90-class encoding (constants, class <-> pitch, classes -> notes); no note-seq.
* `melody`: `Melody`, extraction from NoteSequences, melody -> NoteSequence.
* `meters`: which time signatures are used (`MeterRule`, config key `meters`).
* `slicing`: fixed-length training slices of melodies.
* `files`: reading and writing single MIDI files; the window of a file a generation uses.
* `markers`: MIDI marker events (note-seq and pretty_midi ignore them).
* `rejections`, `report`, `corpus_cache`, `corpus`: extracting a whole folder (why files give
  nothing, what was read and kept, the on-disk cache, the worker pool).

Names are imported lazily (note-seq is slow to import). Nothing here imports TensorFlow.
"""
_PUBLIC = {
    "NUM_CLASSES": "audiogen.midi.encoding",
    "NO_EVENT": "audiogen.midi.encoding",
    "NOTE_OFF": "audiogen.midi.encoding",
    "FIRST_PITCH_CLASS": "audiogen.midi.encoding",
    "MIN_PITCH": "audiogen.midi.encoding",
    "MAX_PITCH": "audiogen.midi.encoding",
    "STEPS_PER_BAR": "audiogen.midi.encoding",
    "Melody": "audiogen.midi.melody",
    "extract_melodies": "audiogen.midi.melody",
    "melody_slices": "audiogen.midi.slicing",
    "melody_to_note_sequence": "audiogen.midi.melody",
    "read_midi": "audiogen.midi.files",
    "write_midi": "audiogen.midi.files",
    "melodies_from_midi": "audiogen.midi.files",
    "midi_to_slices": "audiogen.midi.files",
    "first_melody_slice": "audiogen.midi.files",
    "find_melody_slice": "audiogen.midi.files",
    "SourceSlice": "audiogen.midi.files",
    "MeterRule": "audiogen.midi.meters",
    "read_markers": "audiogen.midi.markers",
    "MidiReadError": "audiogen.midi.files",
    "extract_corpus": "audiogen.midi.corpus",
    "ExtractionReport": "audiogen.midi.report",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'audiogen.midi' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_PUBLIC[name]), name)
