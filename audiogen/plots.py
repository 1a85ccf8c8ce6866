"""Pictures of what audiogen makes and how it trained: audio, melodies, loss curves.

Every function returns a `matplotlib.figure.Figure` built without pyplot (no global figure
registry, no window: figures are drawn on the non-interactive Agg canvas) and reads only
samples, melody classes or a run's TensorBoard logs. `save_png` writes a figure atomically;
`figure_image` gives its pixels for `tf.summary.image`.
"""
import glob
import io
import os

import librosa.display
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from audiogen.files import atomic_path
from audiogen.midi.encoding import (
    FIRST_PITCH_CLASS, STEPS_PER_BAR, STEPS_PER_QUARTER, classes_to_notes)

WIDTH = 8.0          # inches; at DPI, 800 pixels: readable in a browser and in TensorBoard
DPI = 100
# A palette PNG is a fraction of an RGBA one's size; a plot has few colours, and a colour map 256.
PNG_COLORS = 256
DB_RANGE = (-100.0, 0.0)  # fixed, so that the spectrograms of different clips compare
PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
BLACK_KEYS = {1, 3, 6, 8, 10}
NOTE_COLOR = "#1f5fa8"


def new_figure(height, width=WIDTH):
    """A figure on an Agg canvas, laid out without overlaps."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


# === Saving ===

def save_png(figure, path):
    """Write `figure` to `path` as a palette PNG; the file appears whole or not at all."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    image = Image.open(buffer).convert("RGB").quantize(PNG_COLORS)
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG", optimize=True)
    return path


def figure_image(figure):
    """`uint8 [1, H, W, 3]`: the figure's pixels, as `tf.summary.image` takes them."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[None, :, :, :3].copy()


# === Audio ===

def audio_figure(samples, sample_rate, title=None):
    """Waveform above log-frequency spectrogram (dB relative to full scale) of `float [n]`
    samples in [-1, 1] at `sample_rate` Hz."""
    samples = np.asarray(samples, np.float32)
    if samples.ndim != 1 or not samples.size:
        raise ValueError(f"audio to plot must be a non-empty 1-D array of samples, "
                         f"got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("audio to plot holds NaN or infinite samples")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    figure = new_figure(4.5)
    wave, spec = figure.subplots(2, 1, sharex=True, height_ratios=[1, 2])
    draw_waveform(wave, samples, sample_rate)
    wave.label_outer()
    n_fft, hop = window_sizes(len(samples), sample_rate)
    db = spectrogram_db(samples, n_fft, hop)
    image = librosa.display.specshow(db, sr=sample_rate, hop_length=hop, x_axis="s",
                                     y_axis="log", ax=spec, cmap="magma",
                                     vmin=DB_RANGE[0], vmax=DB_RANGE[1])
    spec.set(xlabel="time (s)", ylabel="frequency (Hz)")
    figure.colorbar(image, ax=spec, format="%+.0f dB", pad=0.01)
    wave.set_title(title or f"{len(samples) / sample_rate:.2f} s at {sample_rate} Hz")
    return figure


def draw_waveform(ax, samples, sample_rate, columns=1600):
    """Samples against time; a long clip as its min-max envelope over `columns` blocks (what a
    plot of every sample would show, without drawing every sample)."""
    if len(samples) <= 2 * columns:
        ax.plot(np.arange(len(samples)) / sample_rate, samples, color=NOTE_COLOR, linewidth=0.8)
    else:
        block = -(-len(samples) // columns)
        count = -(-len(samples) // block)
        blocks = np.pad(samples, (0, count * block - len(samples)), mode="edge").reshape(
            count, block)
        times = (np.arange(count) + 0.5) * block / sample_rate
        ax.fill_between(times, blocks.min(1), blocks.max(1), color=NOTE_COLOR, linewidth=0)
    ax.set(xlim=(0, len(samples) / sample_rate), ylim=(-1, 1), ylabel="amplitude")
    ax.grid(alpha=0.3)


def window_sizes(num_samples, sample_rate):
    """`(n_fft, hop)`: windows of about 64 ms (a power of two, shorter for very short clips),
    a quarter of that apart."""
    n_fft = 2 ** int(round(np.log2(max(sample_rate * 0.064, 16))))
    n_fft = min(n_fft, 2 ** int(np.log2(max(num_samples, 2))))
    return n_fft, max(n_fft // 4, 1)


def spectrogram_db(samples, n_fft, hop):
    """`float [n_fft // 2 + 1, frames]` magnitude in dB, 0 dB for a full-scale sine.

    Frames are centred on multiples of `hop` (zero padding), as librosa's STFT; written with
    NumPy because librosa's STFT first starts numba, slow in a fresh process.
    """
    padded = np.pad(samples, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1)).T
    # A full-scale sine peaks at sum(window) / 2 = n_fft / 4.
    return 20 * np.log10(np.maximum(magnitude, 1e-6) / (n_fft / 4))


# === Melodies ===

def pitch_name(pitch):
    """`60` -> `"C4"` (MIDI pitch to scientific pitch notation)."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def pitch_range(melodies, margin=2, least=12):
    """`(low, high)` MIDI pitches framing every note of `melodies`, spanning at least `least`
    semitones (an octave around middle C when there is no note)."""
    pitches = [p for m in melodies for p, _, _ in classes_to_notes(m)]
    low, high = (min(pitches) - margin, max(pitches) + margin) if pitches else (60, 72)
    if high - low < least:
        low -= (least - (high - low)) // 2
        high = low + least
    return low, high


def draw_melody(ax, classes, low, high, steps_per_bar=STEPS_PER_BAR, every_white_key=False):
    """Notes of one melody as bars on a keyboard grid: pitch names up (every white key's, or
    C, E and G's), bars along (a bar of `steps_per_bar` sixteenth steps, e.g. 12 in 3/4)."""
    steps = len(classes)
    for pitch in range(low, high + 1):
        if pitch % 12 in BLACK_KEYS:
            ax.axhspan(pitch - 0.5, pitch + 0.5, color="#ececec", zorder=0, lw=0)
    for pitch, start, end in classes_to_notes(classes):
        ax.add_patch(Rectangle((start, pitch - 0.4), end - start, 0.8, facecolor=NOTE_COLOR,
                               edgecolor="white", linewidth=0.8, zorder=2, gid="note"))
    if not any(np.asarray(classes) >= FIRST_PITCH_CLASS):
        ax.text(steps / 2, (low + high) / 2, "no notes", ha="center", va="center", color="grey")
    ax.set_xlim(0, max(steps, 1))
    ax.set_ylim(low - 0.5, high + 0.5)
    starts = range(0, steps, steps_per_bar)
    ax.set_xticks(starts, [str(s // steps_per_bar + 1) for s in starts])
    ax.set_xticks(range(0, steps + 1, STEPS_PER_QUARTER), minor=True)
    ax.grid(axis="x", which="major", color="#777777", linewidth=0.8)
    ax.grid(axis="x", which="minor", color="#cccccc", linewidth=0.5)
    ax.set_axisbelow(True)
    names = ({0, 2, 4, 5, 7, 9, 11} if every_white_key else {0, 4, 7} if high - low <= 36
             else {0})
    named = [p for p in range(low, high + 1) if p % 12 in names]
    ax.set_yticks(named, [pitch_name(p) for p in named])
    ax.tick_params(axis="y", labelsize=8)


def melody_figure(classes, title=None, steps_per_bar=STEPS_PER_BAR):
    """Piano roll of one melody (`int [T]` classes of the 90-class encoding)."""
    return melodies_figure([classes], [title] if title else None, steps_per_bar=steps_per_bar)


def melodies_figure(melodies, titles=None, title=None, steps_per_bar=STEPS_PER_BAR):
    """Piano rolls of several melodies stacked in one figure, one row (axis) each, on a shared
    pitch range and time axis (e.g. the steps of an interpolation)."""
    melodies = [np.asarray(m) for m in melodies]
    if not melodies:
        raise ValueError("no melodies to plot")
    if titles is not None and len(titles) != len(melodies):
        raise ValueError(f"got {len(titles)} titles for {len(melodies)} melodies")
    low, high = pitch_range(melodies)
    row = min(0.6 + 0.05 * (high - low), 2.4)
    height = min(max(row * len(melodies) + 0.8, 2.6), 40)
    figure = new_figure(height)
    # Labels of neighbouring white keys (E F, B C) touch below about 11 pixels a semitone. The
    # figure loses about 70 pixels to the bar labels and each row about 20 to its title.
    axis_pixels = (height * DPI - 70) / len(melodies) - 20
    every_white_key = axis_pixels / (high - low + 1) >= 11
    axes = figure.subplots(len(melodies), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for i, (ax, classes) in enumerate(zip(axes, melodies)):
        draw_melody(ax, classes, low, high, steps_per_bar, every_white_key)
        if titles:
            ax.set_title(titles[i], loc="left", fontsize=9)
        ax.label_outer()
    axes[-1].set_xlabel("bar")
    if title:
        figure.suptitle(title)
    return figure


# === Training logs ===

def read_scalars(folder):
    """`{tag: (steps, values)}` of the scalar summaries in the TensorBoard event files of
    `folder` (all files in time order; a later value for the same step replaces an earlier one,
    as when a run resumes and repeats an epoch). `{}` when the folder holds no event files."""
    # Imported here: tensorboard's reader starts TensorFlow, which the other pictures do without.
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util.tensor_util import make_ndarray

    series, plugins = {}, {}
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        # A truncated or damaged file yields the events before the damage, as in TensorBoard.
        for event in EventFileLoader(path).Load():
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin:  # TensorFlow writes a tag's metadata with its first value only
                    plugins[value.tag] = plugin
                if plugins.get(value.tag, "scalars") != "scalars":
                    continue
                if value.HasField("tensor"):
                    number = make_ndarray(value.tensor)
                    if number.size != 1:
                        continue
                    number = float(number.reshape(()))
                elif value.HasField("simple_value"):
                    number = float(value.simple_value)
                else:
                    continue
                series.setdefault(value.tag, {})[int(event.step)] = number
    return {tag: (sorted(points), [points[s] for s in sorted(points)])
            for tag, points in series.items()}


def epoch_curves(run_dir):
    """`{metric: {"train": (epochs, values), "validation": ...}}` of a run's per-epoch
    summaries (`<run>/tensorboard/train` and `validation`; epochs counted from 1)."""
    board = os.path.join(run_dir, "tensorboard")
    if not os.path.isdir(board):
        raise FileNotFoundError(f"{run_dir} has no tensorboard/ folder: is it a training run "
                                f"directory (<logdir_root>/<id>)?")
    curves = {}
    for split in ("train", "validation"):
        for tag, (steps, values) in read_scalars(os.path.join(board, split)).items():
            if tag.startswith("epoch_"):
                curves.setdefault(tag[len("epoch_"):], {})[split] = (
                    [s + 1 for s in steps], values)
    if not curves:
        raise ValueError(f"{board}: no per-epoch scalars in train/ or validation/ (has the run "
                         f"finished an epoch?)")
    return curves


def loss_curves_figure(run_dir, title=None):
    """One panel per logged metric (loss first, learning rate last), its training curve with
    its validation twin where the run validated."""
    curves = epoch_curves(run_dir)
    names = sorted(curves, key=lambda n: (n != "loss", n == "learning_rate", n))
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure = new_figure(0.4 + 2.3 * rows, min(WIDTH, 3.2 * columns + 0.4))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        for split, style in (("train", "-o"), ("validation", "--s")):
            if split in curves[name]:
                epochs, values = curves[name][split]
                ax.plot(epochs, values, style, markersize=3, label=split)
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    figure.suptitle(title or f"Training curves: {os.path.basename(os.path.normpath(run_dir))}")
    return figure
