"""Property-based tests (hypothesis) of the config loader, the quantizers, the melody encoding and
the window arithmetic, and a mutation fuzz of real audio and MIDI files through the loaders:
only the package's clear errors, never a crash or a hang."""
import contextlib
import json
import os
import signal

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiogen.audio.io import UnsupportedAudioError, load_audio, probe_audio
from audiogen.audio.quantize import dequantize, quantize
from audiogen.config import DEFAULTS, ConfigError, resolve_config
from audiogen.data.audio_dataset import count_pieces
from audiogen.midi.corpus import extract_file
from audiogen.midi.encoding import FIRST_PITCH_CLASS, NO_EVENT, NOTE_OFF, NUM_CLASSES
from audiogen.midi.files import MidiReadError, melodies_from_midi, read_midi, write_midi
from run_helpers import DEMO_MIDI, ROOT

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AUDIO_FILE = os.path.join(ROOT, "data", "demo", "audio", "piano", "0001-00501.flac")


@contextlib.contextmanager
def time_limit(seconds):
    """Fail instead of hanging."""
    def expired(*_):
        raise TimeoutError(f"took over {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- config --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5000) | st.floats(-10, 1e5, allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6)


@FAST
@given(model=st.sampled_from(["samplernn", "musicvae"]), data=st.data())
def test_the_config_loader_accepts_or_names_the_problem(model, data):
    keys = list(DEFAULTS[model]) + ["not_a_key"]
    raw = data.draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=4))
    raw["model"] = model
    try:
        config = resolve_config(raw, source="fuzz.config.json")
    except ConfigError as e:
        assert str(e).startswith("fuzz.config.json: ")
        return
    assert set(config) == set(DEFAULTS[model]) | {"model"}
    assert resolve_config(json.loads(json.dumps(config))) == config  # resolved is a fixed point


# --- quantizers ----------------------------------------------------------------------------------

@FAST
@given(q_type=st.sampled_from(["mu-law", "linear"]), q_levels=st.integers(2, 1024),
       samples=st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=1, max_size=64))
def test_quantizers_round_trip(q_type, q_levels, samples):
    levels = np.arange(256 if q_type == "mu-law" else q_levels)
    np.testing.assert_array_equal(quantize(dequantize(levels, q_type, q_levels), q_type,
                                           q_levels), levels)
    q = quantize(np.array(samples, np.float32), q_type, q_levels).numpy()
    assert q.min() >= 0 and q.max() < len(levels)
    # the level of x is the nearest: re-quantizing its value gives it again
    np.testing.assert_array_equal(quantize(dequantize(q, q_type, q_levels), q_type, q_levels), q)


# --- melody encoding: classes -> MIDI -> classes ------------------------------------------------

@st.composite
def melodies(draw):
    """Whole bars of classes that start with a note-on and never rest for a bar (one melody)."""
    bars = draw(st.integers(1, 4))
    steps, classes, since_note = bars * 16, [], 0
    for t in range(steps):
        if t == 0 or since_note >= 12:
            choice = "note"
        else:
            choice = draw(st.sampled_from(["hold", "hold", "note", "off"]))
        if choice == "note":
            classes.append(draw(st.integers(FIRST_PITCH_CLASS, NUM_CLASSES - 1)))
            since_note = 0
        else:
            classes.append(NOTE_OFF if choice == "off" and classes[-1] != NOTE_OFF else NO_EVENT)
            since_note += 1
    return np.array(classes, np.int32)


def canonical(classes):
    """What a melody means as notes: repeated note-offs and a note-off at the end of a rest are
    the same music."""
    out, sounding = [], False
    for c in classes:
        if c >= FIRST_PITCH_CLASS:
            out.append(int(c))
            sounding = True
        elif c == NOTE_OFF and sounding:
            out.append(NOTE_OFF)
            sounding = False
        else:
            out.append(NO_EVENT)
    return out


@settings(max_examples=40, deadline=None)
@given(melody=melodies())
def test_a_melody_survives_midi_and_back(tmp_path_factory, melody):
    path = str(tmp_path_factory.mktemp("melody") / "m.mid")
    write_midi(melody, path)
    (back,) = melodies_from_midi(path)
    assert canonical(back.classes) == canonical(melody)


# --- window arithmetic ---------------------------------------------------------------------------

@FAST
@given(num_samples=st.integers(0, 100000), seq_len=st.integers(1, 512),
       windows=st.integers(1, 40))
def test_piece_counts(num_samples, seq_len, windows):
    piece_len = seq_len * windows
    pieces = count_pieces(num_samples, seq_len, piece_len)
    full, tail = divmod(num_samples, piece_len)
    assert pieces >= 1 and pieces in (max(full, 1), full + 1)
    # every sample of the whole pieces is used; a tail shorter than one window is dropped
    if full:
        assert (pieces == full + 1) == (tail >= seq_len)


# --- mutation fuzz of real files -----------------------------------------------------------------

def mutated_copies(source, target, rng):
    """Write mutations of the file `source` to `target` one after another, yielding the name of
    each: empty, truncated, bytes flipped, header zeroed."""
    with open(source, "rb") as f:
        data = f.read()
    for name, mutated in mutations(data, rng):
        with open(target, "wb") as f:
            f.write(mutated)
        yield name


def mutations(data, rng):
    """Truncated, bytes flipped, header zeroed, empty."""
    yield "empty", b""
    for fraction in (0.02, 0.3, 0.7, 0.98):
        yield f"truncated {fraction}", data[:int(len(data) * fraction)]
    for k in range(4):
        flipped = bytearray(data)
        for i in rng.integers(0, len(data), 1 + k * 20):
            flipped[i] ^= 0xFF
        yield f"flipped {k}", bytes(flipped)
    yield "header zeroed", bytes(64) + data[64:]


def test_mutated_audio_gives_clear_errors_or_audio(tmp_path):
    rng = np.random.default_rng(0)
    sources = {".flac": AUDIO_FILE}
    tone = 0.3 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440)
    for ext, subtype in ((".wav", "PCM_16"), (".ogg", "VORBIS"), (".mp3", "MPEG_LAYER_III")):
        path = str(tmp_path / f"tone{ext}")
        sf.write(path, tone, 8000, subtype=subtype)
        sources[ext] = path
    cases = 0
    for ext, source in sources.items():
        path = str(tmp_path / f"mutated{ext}")
        for name in mutated_copies(source, path, rng):
            cases += 1
            with time_limit(30):
                try:
                    probe_audio(path)
                    audio = load_audio(path, 8000)
                except UnsupportedAudioError as e:
                    assert "mutated" in str(e), (ext, name, e)
                    continue
                assert audio.ndim == 1 and np.all(np.isfinite(audio)), (ext, name)
    assert cases == 4 * 10


def test_mutated_midi_gives_clear_errors_or_melodies(tmp_path):
    rng = np.random.default_rng(1)
    names = sorted(n for n in os.listdir(DEMO_MIDI) if n.endswith(".mid"))[:3]
    cases = 0
    path = str(tmp_path / "mutated.mid")
    for source in names:
        for name in mutated_copies(os.path.join(DEMO_MIDI, source), path, rng):
            cases += 1
            with time_limit(30):
                try:
                    read_midi(path)
                except MidiReadError as e:
                    assert "mutated.mid" in str(e)
                result = extract_file(path, 2, 8, name="mutated.mid")   # never raises
                assert result.reason is not None or len(result.slices) > 0, (source, name)
    assert cases == 3 * 10
