"""`make demo`: train both models briefly on the bundled demo data and generate from them.

Everything goes into demo_out/. The run resumes if demo_out/ already holds checkpoints, so a
second `make demo` continues training from where the first stopped.
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "demo_out")
sys.path.insert(0, ROOT)

from audiogen.cli import generate, train  # noqa: E402


def step(title, main, argv):
    print(f"\n=== {title} ===\n$ python {main.__module__.split('.')[-1]}.py {' '.join(argv)}",
          flush=True)
    start = time.time()
    code = main(argv)
    if code:
        sys.exit(f"demo step failed with exit code {code}: {title}")
    print(f"({time.time() - start:.0f} s)")


def main():
    os.chdir(ROOT)
    logdir = os.path.join(OUT, "logdir")
    step("SampleRNN: train on data/demo/audio (16 kHz piano)", train.main, [
        "--data_dir", "data/demo/audio", "--config_file", "configs/samplernn-small.config.json",
        "--id", "samplernn-piano", "--logdir_root", logdir, "--output_dir", OUT,
        "--sample_rate", "16000", "--batch_size", "8", "--num_epochs", "2",
        "--steps_per_epoch", "250", "--output_file_dur", "2", "--verbose", "false"])
    # After so little training the model continues audio it is primed with, then fades: an
    # unprimed clip from silence is mostly silence at this stage.
    step("SampleRNN: continue 1 s of piano for 4 s, at two temperatures", generate.main, [
        "--checkpoint_path", os.path.join(logdir, "samplernn-piano"),
        "--output_path", os.path.join(OUT, "piano.wav"), "--num_seqs", "2",
        "--temperature", "0.9", "1.0", "--dur", "4", "--rng_seed", "1",
        "--seed", "data/demo/audio/piano/0001-00501.flac", "--seed_offset", "3s"])
    step("MusicVAE: train on data/demo/midi (O'Neill's folk tunes, 2 bars)", train.main, [
        "--config_file", "configs/musicvae-tiny.config.json", "--id", "musicvae-folk",
        "--logdir_root", logdir, "--num_steps", "600", "--evaluate_interval", "200"])
    midi_dir = os.path.join("data", "demo", "midi", "oneills")
    first, second = "0001-005017.mid", "0001-005027.mid"  # two tunes in 4/4
    run = os.path.join(logdir, "musicvae-folk")
    step("MusicVAE: sample 4 melodies", generate.main, [
        "--checkpoint_path", run, "--output_path", os.path.join(OUT, "melody.mid"),
        "--num_seqs", "4", "--temperature", "0.5", "1.0", "--rng_seed", "1"])
    step("MusicVAE: interpolate between two tunes", generate.main, [
        "--checkpoint_path", run, "--output_path", os.path.join(OUT, "interpolation.mid"),
        "--interpolate", os.path.join(midi_dir, first), os.path.join(midi_dir, second),
        "--steps", "5", "--temperature", "0.5", "--rng_seed", "1"])
    print(f"\nDone: generated audio and MIDI are in {OUT}/, runs in {logdir}/")


if __name__ == "__main__":
    main()
