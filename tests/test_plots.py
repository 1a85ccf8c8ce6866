"""Pictures: audio, melodies and loss curves as PNG files, on demo data and a real tiny run."""
import contextlib
import io
import os
import re

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from audiogen import plots
from audiogen.midi.encoding import classes_to_notes, pitch_to_class
from run_helpers import run_dir, samplernn_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_AUDIO = os.path.join(ROOT, "data", "demo", "audio", "piano", "0001-00501.flac")
DEMO_MIDI = os.path.join(ROOT, "data", "demo", "midi", "oneills")
FOUR_FOUR = ["0001-005017.mid", "0001-005027.mid", "0001-00503.mid"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path, width=800, max_bytes=150_000):
    """The file at `path` is a whole PNG `width` pixels wide and smaller than `max_bytes`;
    returns its (width, height)."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    assert os.path.getsize(path) < max_bytes, f"{path}: {os.path.getsize(path)} bytes"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width == width
        return image.size


def demo_melody(name, steps=32):
    from audiogen.midi.files import first_melody_slice
    return first_melody_slice(os.path.join(DEMO_MIDI, name), steps)[0]


def test_audio_of_demo_piano_is_a_small_png_with_labelled_axes(tmp_path):
    samples, rate = sf.read(DEMO_AUDIO, frames=3 * 16000, dtype="float32")
    figure = plots.audio_figure(samples, rate, "piano")
    wave, spec = figure.axes[:2]
    assert wave.get_ylabel() == "amplitude" and wave.get_title() == "piano"
    assert (spec.get_xlabel(), spec.get_ylabel()) == ("time (s)", "frequency (Hz)")
    assert spec.get_xlim()[1] == pytest.approx(3.0, abs=0.05)
    assert plots.save_png(figure, str(tmp_path / "piano.png")) == str(tmp_path / "piano.png")
    assert check_png(tmp_path / "piano.png") == (800, 450)
    assert os.listdir(tmp_path) == ["piano.png"]  # no temporary file left


def test_spectrogram_of_a_full_scale_sine_peaks_at_0_db_at_its_frequency():
    rate, n_fft, hop = 8000, 512, 128
    sine = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    db = plots.spectrogram_db(sine, n_fft, hop)
    assert db.shape == (n_fft // 2 + 1, rate // hop + 1)
    middle = db[:, db.shape[1] // 2]
    assert np.argmax(middle) == 1000 * n_fft // rate
    assert middle.max() == pytest.approx(0.0, abs=0.1)


def test_short_and_silent_clips_plot(tmp_path):
    for length in (1, 100, 5000):
        plots.save_png(plots.audio_figure(np.zeros(length), 8000), str(tmp_path / f"{length}.png"))
        check_png(tmp_path / f"{length}.png")


@pytest.mark.parametrize("samples, rate, message", [
    (np.zeros(0), 8000, r"non-empty 1-D .* shape \(0,\)"),
    (np.zeros((2, 10)), 8000, r"shape \(2, 10\)"),
    (np.array([0.0, np.nan]), 8000, "NaN or infinite"),
    (np.zeros(10), 0, "sample rate must be positive, got 0"),
])
def test_bad_audio_is_a_clear_error(samples, rate, message):
    with pytest.raises(ValueError, match=message):
        plots.audio_figure(samples, rate)


def test_pitch_names_and_range():
    assert [plots.pitch_name(p) for p in (21, 60, 61, 108)] == ["A0", "C4", "C#4", "C8"]
    melody = [pitch_to_class(64), 0, 1, pitch_to_class(67)]
    assert plots.pitch_range([melody]) == (60, 72)  # 62..69 widened to an octave
    assert plots.pitch_range([[0, 0]]) == (60, 72)


def test_melody_of_a_demo_tune_names_its_pitches(tmp_path):
    melody = demo_melody(FOUR_FOUR[0])
    figure = plots.melody_figure(melody, "tune")
    (ax,) = figure.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    low, high = ax.get_ylim()
    assert all(re.fullmatch(r"[A-G]-?\d", label) for label in labels)
    assert {"B4", "C5", "D5"} <= set(labels)  # every white key where a row has the room
    pitches = [p for p, _, _ in classes_to_notes(melody)]
    assert low < min(pitches) and max(pitches) < high
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]  # two bars
    notes = [p for p in ax.patches if p.get_gid() == "note"]
    assert len(notes) == len(pitches)  # a bar per note, repeated notes apart
    plots.save_png(figure, str(tmp_path / "tune.png"))
    check_png(tmp_path / "tune.png")


def test_bars_of_another_meter():
    (ax,) = plots.melody_figure(np.zeros(32, int), steps_per_bar=12).axes  # 3/4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    assert list(ax.get_xticks()) == [0, 12, 24]


def test_interpolation_is_one_figure_with_an_axis_per_step(tmp_path):
    melodies = [demo_melody(n) for n in FOUR_FOUR] + [np.zeros(32, int)]
    titles = [f"step {i + 1}" for i in range(len(melodies))]
    figure = plots.melodies_figure(melodies, titles, "Interpolation")
    assert len(figure.axes) == len(melodies)
    assert [ax.get_title(loc="left") for ax in figure.axes] == titles
    assert len({ax.get_ylim() for ax in figure.axes}) == 1  # one pitch range for all steps
    labels = {t.get_text()[0] for t in figure.axes[0].get_yticklabels()}
    assert labels <= set("CEG")  # fewer labels on short rows, none touching
    assert figure.axes[-1].texts[0].get_text() == "no notes"
    plots.save_png(figure, str(tmp_path / "all.png"))
    _, height = check_png(tmp_path / "all.png")
    assert height > 4 * 100
    with pytest.raises(ValueError, match="got 2 titles for 4 melodies"):
        plots.melodies_figure(melodies, titles[:2])


def test_figure_image_is_rgb_uint8():
    image = plots.figure_image(plots.melody_figure(np.zeros(16, int)))
    assert image.dtype == np.uint8 and image.shape[0] == 1 and image.shape[3] == 3


def write_scalars(folder, values, step_offset=0):
    import tensorflow as tf
    writer = tf.summary.create_file_writer(folder)
    with writer.as_default():
        for tag, series in values.items():
            for step, value in enumerate(series):
                tf.summary.scalar(tag, value, step=step + step_offset)
        tf.summary.text("note", "not a scalar", step=0)
    writer.close()


def test_curves_of_a_run_without_validation_and_a_resumed_epoch(tmp_path):
    train = str(tmp_path / "run" / "tensorboard" / "train")
    write_scalars(train, {"epoch_loss": [3.0, 2.0], "epoch_learning_rate": [0.1, 0.1],
                          "batch_loss": [9.0, 8.0, 7.0]})
    write_scalars(train, {"epoch_loss": [1.5, 1.0]}, step_offset=1)  # resumed, epoch 2 again
    curves = plots.epoch_curves(str(tmp_path / "run"))
    assert curves == {"loss": {"train": ([1, 2, 3], [3.0, 1.5, 1.0])},
                      "learning_rate": {"train": ([1, 2], [pytest.approx(0.1)] * 2)}}
    figure = plots.loss_curves_figure(str(tmp_path / "run"))
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["loss", "learning rate"]
    assert [len(ax.lines) for ax in visible] == [1, 1]
    plots.save_png(figure, str(tmp_path / "curves.png"))
    check_png(tmp_path / "curves.png", width=int(3.2 * 2 * 100 + 40))


def test_curves_of_a_folder_that_is_no_run_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has no tensorboard/ folder"):
        plots.loss_curves_figure(str(tmp_path))
    (tmp_path / "tensorboard" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no per-epoch scalars"):
        plots.loss_curves_figure(str(tmp_path))
    (tmp_path / "tensorboard" / "train" / "events.out.tfevents.1.x").write_bytes(b"junk" * 10)
    assert plots.read_scalars(str(tmp_path / "tensorboard" / "train")) == {}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny SampleRNN trained for 2 short epochs with validation and audio generated after
    each, and its console output."""
    from audiogen.cli import train
    folder = str(tmp_path_factory.mktemp("tiny"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = train.main(samplernn_args(folder, 2, "--steps_per_epoch", "8",
                                         "--num_val_batches", "1"))
    assert code == 0, printed.getvalue()
    return run_dir(folder), printed.getvalue()


@pytest.mark.slow
def test_loss_curves_of_a_real_run_match_its_console(tiny_run, tmp_path):
    run, printed = tiny_run
    logged = [dict(re.findall(r"(\w+): ([\d.]+)", line))
              for line in re.findall(r"^epoch \d+ done: (.*)$", printed, re.M)]
    curves = plots.epoch_curves(run)
    assert set(curves) == {"loss", "accuracy", "bits_per_sample", "learning_rate"}
    for name in ("loss", "bits_per_sample"):
        assert set(curves[name]) == {"train", "validation"}
        for split, prefix in (("train", ""), ("validation", "val_")):
            epochs, values = curves[name][split]
            assert epochs == [1, 2]
            assert values == pytest.approx([float(e[prefix + name]) for e in logged], abs=1e-4)
    figure = plots.loss_curves_figure(run)
    assert figure.axes[0].get_title() == "loss" and len(figure.axes[0].lines) == 2
    assert figure.texts[0].get_text() == "Training curves: run"
    plots.save_png(figure, str(tmp_path / "curves.png"))
    check_png(tmp_path / "curves.png")


@pytest.mark.slow
def test_training_logs_a_picture_beside_each_generated_clip(tiny_run):
    run, _ = tiny_run
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    folder = os.path.join(run, "tensorboard", "audio")
    kinds = {}
    for name in os.listdir(folder):
        for event in EventFileLoader(os.path.join(folder, name)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    kinds[value.tag] = value.metadata.plugin_data.plugin_name
    assert kinds == {"epoch_001_t0.75": "audio", "epoch_001_t0.75_picture": "images",
                     "epoch_002_t0.75": "audio", "epoch_002_t0.75_picture": "images"}
