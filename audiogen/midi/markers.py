"""MIDI marker meta events (type 0x06): writing a NoteSequence with markers, reading them back.

note-seq and pretty_midi neither write nor read markers, so they are added to the first track of
the file pretty_midi writes (with mido, which pretty_midi is built on). Markers are what DAWs and
score editors show as named positions; an interpolation file marks where each step starts.
"""
import io
import warnings

import mido

with warnings.catch_warnings():  # note_seq imports pydub, which warns about a missing ffmpeg
    warnings.simplefilter("ignore")
    import note_seq


def write_with_markers(sequence, path, markers):
    """Write `sequence` as a MIDI file at `path` with a marker per `(time_seconds, text)`."""
    pm = note_seq.note_sequence_to_pretty_midi(sequence)
    ticks = [(pm.time_to_tick(time), text) for time, text in markers]
    buffer = io.BytesIO()
    pm.write(buffer)
    buffer.seek(0)
    midi = mido.MidiFile(file=buffer)
    track = midi.tracks[0]
    events = _absolute(track) + [(tick, mido.MetaMessage("marker", text=text))
                                 for tick, text in ticks]
    # Markers go before the other events of their tick; end_of_track stays last.
    events.sort(key=lambda e: (e[0], e[1].type == "end_of_track", e[1].type != "marker"))
    track.clear()
    previous = 0
    for tick, message in events:
        track.append(message.copy(time=tick - previous))
        previous = tick
    midi.save(path)


def read_markers(path):
    """`[(time_seconds, text)]` of the marker events of the MIDI file at `path`, in time order."""
    markers = []
    time = 0.0
    for message in mido.MidiFile(path):   # iterating a file gives delta times in seconds
        time += message.time
        if message.type == "marker":
            markers.append((time, message.text))
    return markers


def _absolute(track):
    events, tick = [], 0
    for message in track:
        tick += message.time
        events.append((tick, message))
    return events
