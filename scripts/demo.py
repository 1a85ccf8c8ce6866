"""`make demo`: train both models briefly on the bundled demo data and generate from them.

Everything goes into demo_out/: each generated file with its picture (a PNG of the same name),
and the loss curves of each run (`<id>-curves.png`). The run resumes if demo_out/ already holds
checkpoints, so a second `make demo` continues training from where the first stopped.
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "demo_out")
sys.path.insert(0, ROOT)

from audiogen.cli import generate, train  # noqa: E402
from audiogen.plots import loss_curves_figure, save_png  # noqa: E402


def step(title, main, argv):
    print(f"\n=== {title} ===\n$ python {main.__module__.split('.')[-1]}.py {' '.join(argv)}",
          flush=True)
    start = time.time()
    code = main(argv)
    if code:
        sys.exit(f"demo step failed with exit code {code}: {title}")
    print(f"({time.time() - start:.0f} s)")


def plot_curves(run):
    path = os.path.join(OUT, os.path.basename(run) + "-curves.png")
    print(f"Wrote {save_png(loss_curves_figure(run), path)}")


def main():
    os.chdir(ROOT)
    logdir = os.path.join(OUT, "logdir")
    step("SampleRNN: train on data/demo/audio (16 kHz piano)", train.main, [
        "--data_dir", "data/demo/audio", "--config_file", "configs/samplernn-small.config.json",
        "--id", "samplernn-piano", "--logdir_root", logdir, "--output_dir", OUT,
        "--sample_rate", "16000", "--batch_size", "8", "--num_epochs", "2",
        "--steps_per_epoch", "250", "--output_file_dur", "2", "--verbose", "false"])
    plot_curves(os.path.join(logdir, "samplernn-piano"))
    # After so little training the model continues audio it is primed with, then fades: an
    # unprimed clip from silence is mostly silence at this stage.
    step("SampleRNN: continue 1 s of piano for 4 s, at two temperatures", generate.main, [
        "--checkpoint_path", os.path.join(logdir, "samplernn-piano"),
        "--output_path", os.path.join(OUT, "piano.wav"), "--num_seqs", "2",
        "--temperature", "0.9", "1.0", "--dur", "4", "--rng_seed", "1",
        "--seed", "data/demo/audio/piano/0001-00501.flac", "--seed_offset", "3s", "--plot"])
    step("MusicVAE: train on data/demo/midi (O'Neill's folk tunes, 2 bars)", train.main, [
        "--config_file", "configs/musicvae-tiny.config.json", "--id", "musicvae-folk",
        "--logdir_root", logdir, "--num_steps", "600", "--evaluate_interval", "200"])
    plot_curves(os.path.join(logdir, "musicvae-folk"))
    midi_dir = os.path.join("data", "demo", "midi", "oneills")
    first, second = "0001-005017.mid", "0001-005027.mid"  # two tunes in 4/4
    run = os.path.join(logdir, "musicvae-folk")
    step("MusicVAE: sample 4 melodies", generate.main, [
        "--checkpoint_path", run, "--output_path", os.path.join(OUT, "melody.mid"),
        "--num_seqs", "4", "--temperature", "0.5", "1.0", "--rng_seed", "1", "--plot"])
    step("MusicVAE: interpolate between two tunes", generate.main, [
        "--checkpoint_path", run, "--output_path", os.path.join(OUT, "interpolation.mid"),
        "--interpolate", os.path.join(midi_dir, first), os.path.join(midi_dir, second),
        "--steps", "5", "--temperature", "0.5", "--rng_seed", "1", "--plot"])
    print(f"\nDone: generated audio and MIDI with their pictures (PNG) and the training curves "
          f"are in {OUT}/, runs in {logdir}/")


if __name__ == "__main__":
    main()
