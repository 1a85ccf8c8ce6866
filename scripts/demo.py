"""`make demo`: generate from the models shipped in models/, then train both models briefly on the
bundled demo data and generate from those runs.

Everything goes into demo_out/: each generated file with its picture (a PNG of the same name),
and the loss curves of each training run (`<id>-curves.png`). The training runs resume if
demo_out/ already holds their checkpoints, so a second `make demo` continues training where the
first stopped; generated files are replaced.
"""
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "demo_out")
sys.path.insert(0, ROOT)

from audiogen.cli import generate, train  # noqa: E402
from audiogen.plots import loss_curves_figure, save_png  # noqa: E402

SAMPLERNN_MODEL = os.path.join("models", "samplernn-bach-piano")
MUSICVAE_MODEL = os.path.join("models", "musicvae-folk-2bar")
DEMO_TUNES = os.path.join("data", "demo", "midi", "oneills")
FIRST, SECOND = "0001-005017.mid", "0001-005027.mid"  # two tunes in 4/4


def step(title, main, argv):
    print(f"\n=== {title} ===\n$ python {main.__module__.split('.')[-1]}.py {' '.join(argv)}",
          flush=True)
    start = time.time()
    code = main(argv)
    if code:
        sys.exit(f"demo step failed with exit code {code}: {title}")
    print(f"({time.time() - start:.0f} s)")


def out(*parts):
    return os.path.join(OUT, *parts)


def plot_curves(run):
    path = out(os.path.basename(run) + "-curves.png")
    print(f"Wrote {save_png(loss_curves_figure(run), path)}")


def from_shipped_models():
    step("SampleRNN, shipped model (Bach chorales on piano): 4 clips of 8 s from silence, at "
         "temperatures 0.95 and 1.0", generate.main, [
             "--checkpoint_path", SAMPLERNN_MODEL, "--output_path", out("bach.wav"),
             "--num_seqs", "4", "--temperature", "0.95", "1.0", "--dur", "8", "--rng_seed", "1",
             "--plot", "--overwrite"])
    step("MusicVAE, shipped model (2-bar folk melodies): sample 8 melodies", generate.main, [
        "--checkpoint_path", MUSICVAE_MODEL, "--output_path", out("folk.mid"), "--num_seqs", "8",
        "--temperature", "0.5", "--rng_seed", "1", "--plot", "--overwrite"])
    step("MusicVAE, shipped model: interpolate between two demo tunes", generate.main, [
        "--checkpoint_path", MUSICVAE_MODEL, "--output_path", out("folk-interpolation.mid"),
        "--interpolate", os.path.join(DEMO_TUNES, FIRST), os.path.join(DEMO_TUNES, SECOND),
        "--steps", "7", "--temperature", "0.5", "--rng_seed", "1", "--plot", "--overwrite"])


def train_briefly(logdir):
    step("SampleRNN: train briefly on data/demo/audio (16 kHz piano)", train.main, [
        "--data_dir", "data/demo/audio", "--config_file", "configs/samplernn-small.config.json",
        "--id", "samplernn-piano", "--logdir_root", logdir, "--output_dir", out("trained"),
        "--sample_rate", "16000", "--batch_size", "8", "--num_epochs", "2",
        "--steps_per_epoch", "250", "--output_file_dur", "2", "--verbose", "false"])
    plot_curves(os.path.join(logdir, "samplernn-piano"))
    # After so little training the model continues audio it is primed with, then fades: an
    # unprimed clip from silence is mostly silence at this stage (the shipped model trained 21,000
    # steps of batch 16).
    step("SampleRNN: the brief run continues 1 s of piano for 4 s", generate.main, [
        "--checkpoint_path", os.path.join(logdir, "samplernn-piano"),
        "--output_path", out("trained", "piano.wav"), "--num_seqs", "2",
        "--temperature", "0.9", "1.0", "--dur", "4", "--rng_seed", "1",
        "--seed", "data/demo/audio/piano/0001-00501.flac", "--seed_offset", "3s", "--plot",
        "--overwrite"])
    step("MusicVAE: train briefly on data/demo/midi (O'Neill's folk tunes, 2 bars)", train.main, [
        "--config_file", "configs/musicvae-tiny.config.json", "--id", "musicvae-folk",
        "--logdir_root", logdir, "--num_steps", "600", "--evaluate_interval", "200"])
    plot_curves(os.path.join(logdir, "musicvae-folk"))
    step("MusicVAE: the brief run samples 4 melodies", generate.main, [
        "--checkpoint_path", os.path.join(logdir, "musicvae-folk"),
        "--output_path", out("trained", "melody.mid"), "--num_seqs", "4",
        "--temperature", "0.5", "1.0", "--rng_seed", "1", "--plot", "--overwrite"])


OUTPUTS = [
    ("bach_*.wav", "SampleRNN, shipped model: clips generated from silence"),
    ("folk_*.mid", "MusicVAE, shipped model: sampled melodies"),
    ("folk-interpolation_*.mid", "MusicVAE, shipped model: the interpolation (_all: every step)"),
    ("trained/piano_*.wav", "the brief SampleRNN run continuing 1 s of piano"),
    ("trained/samplernn-piano/*.wav", "the brief SampleRNN run's clip after each epoch"),
    ("trained/melody_*.mid", "the brief MusicVAE run's sampled melodies"),
    ("*-curves.png", "loss and metrics of each brief run"),
]


def summary(logdir, seconds):
    rel = os.path.relpath(OUT, ROOT)
    print(f"\n=== Done in {seconds / 60:.1f} min. Written in {rel}/: ===")
    for pattern, what in OUTPUTS:
        print(f"  {pattern:30s} {len(glob.glob(out(pattern))):3d}  {what}")
    print(f"Each WAV and MIDI file has a PNG of the same name (waveform and spectrogram, or piano "
          f"roll). Listen to the WAV files in any audio player; open the MIDI files in a DAW or "
          f"MuseScore, or play them with `timidity FILE.mid`. Training runs: "
          f"{os.path.relpath(logdir, ROOT)}/ (`tensorboard --logdir "
          f"{os.path.relpath(logdir, ROOT)}`).")


def main():
    os.chdir(ROOT)
    start = time.time()
    logdir = out("logdir")
    from_shipped_models()
    train_briefly(logdir)
    summary(logdir, time.time() - start)


if __name__ == "__main__":
    main()
