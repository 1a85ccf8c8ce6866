"""`generate.py`: generate audio (SampleRNN) or melodies (MusicVAE) from a trained run.

The model kind, its config and (for SampleRNN) the training sample rate are read from the run
directory of `--checkpoint_path`, so `--config_file` and `--sample_rate` are needed only to
override them.
"""
import argparse
import os
import sys

from audiogen.cli.args import add_bool, add_debug, fail, midi_program, plain_warnings, \
    positive_float, run_guarded
from audiogen.cli.attribute_vectors import attribute_amount, repeated_attribute
from audiogen.cli.console import quiet_console
from audiogen.config import ConfigError
from audiogen.midi.attributes import ATTRIBUTES


def build_parser():
    parser = argparse.ArgumentParser(
        prog="generate.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output_path", required=True,
                        help="Output file (.wav for SampleRNN, .mid for MusicVAE); several "
                             "sequences are written as numbered siblings (out_0.wav, out_1.wav...)")
    parser.add_argument("--checkpoint_path", required=True,
                        help="A checkpoint prefix (<run>/checkpoints/ckpt-N) or a run directory "
                             "(then its newest checkpoint).")
    parser.add_argument("--config_file", default=None,
                        help="Model config; default: the one saved in the run directory.")
    parser.add_argument("--num_seqs", type=int, default=1,
                        help="Number of sequences, generated together as one batch.")
    parser.add_argument("--temperature", type=positive_float, nargs="+", default=[0.75],
                        help="Sampling temperature per sequence; fewer values than sequences "
                             "are cycled.")
    parser.add_argument("--rng_seed", type=int, default=None,
                        help="Random seed for sampling (default: a fresh one, printed).")
    add_bool(parser, "overwrite", False,
             "Replace existing output files (otherwise the next free name is used)")
    add_bool(parser, "plot", False,
             "Also write a PNG beside each output, with the same name: waveform and "
             "spectrogram of audio, piano roll of a melody (all steps of an interpolation "
             "in one picture beside its _all file)")
    add_debug(parser)
    samplernn = parser.add_argument_group("SampleRNN")
    samplernn.add_argument("--dur", type=positive_float, default=3,
                           help="Duration of generated audio in seconds (after the seed excerpt).")
    samplernn.add_argument("--sample_rate", type=int, default=None,
                           help="Sample rate written to the WAV header (default: the training "
                                "rate; another value changes only the header).")
    samplernn.add_argument("--seed", default=None,
                           help="Audio file priming generation; the output begins with it.")
    samplernn.add_argument("--seed_offset", default="0",
                           help="Start of the seed excerpt: samples (e.g. 16000) or seconds with "
                                "an s suffix (e.g. 1.5s).")
    samplernn.add_argument("--seed_dur", type=positive_float, default=1.0,
                           help="Length of the seed excerpt in seconds.")
    musicvae = parser.add_argument_group("MusicVAE")
    musicvae.add_argument("--qpm", type=positive_float, default=None,
                          help="Tempo of written MIDI files (quarter notes per minute); default: "
                               "the source's for --reconstruct / --interpolate, else 120.")
    musicvae.add_argument("--program", type=midi_program, default=None,
                          help="General MIDI program (0..127) of written MIDI files; default: "
                               "the source's for --reconstruct / --interpolate, else 0 (piano).")
    musicvae.add_argument("--interpolate", nargs=2, metavar=("A.mid", "B.mid"), default=None,
                          help="Interpolate (slerp) between the first usable windows (under "
                               "the run's meters) of two MIDI files.")
    musicvae.add_argument("--steps", type=int, default=5,
                          help="Interpolation steps, endpoints included.")
    musicvae.add_argument("--reconstruct", metavar="A.mid", default=None,
                          help="Encode and decode the first usable window of a MIDI file.")
    musicvae.add_argument("--attribute", type=attribute_amount, action="append", default=None,
                          metavar="NAME=AMOUNT",
                          help=f"Add AMOUNT times the run's attribute vector NAME "
                               f"({', '.join(ATTRIBUTES)}) to every "
                               "latent code: sampled, each interpolation step, reconstructed; "
                               "e.g. note_density=+1.5. Repeatable. A run without vectors gets "
                               "them first, from its training data.")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    quiet_console(args.debug)
    plain_warnings()
    return run_guarded(lambda: _generate(args), args.debug)


def _generate(args):
    if args.num_seqs < 1:
        return fail(f"--num_seqs must be at least 1, got {args.num_seqs}")
    if args.plot and os.path.splitext(args.output_path)[1].lower() == ".png":
        return fail(f"--output_path {args.output_path} is where the pictures of --plot would go "
                    f"(a .png beside each output): name the output .wav or .mid")
    if repeated_attribute(args.attribute):
        return fail(f"--attribute {repeated_attribute(args.attribute)} is given twice: give "
                    f"each attribute once, with the sum of its amounts")
    from audiogen.training.trained import read_run
    try:
        checkpoint, run_dir, config = read_run(args.checkpoint_path, args.config_file)
    except (ConfigError, FileNotFoundError) as e:
        return fail(str(e))
    if args.attribute and config["model"] != "musicvae":
        return fail(f"--attribute applies to MusicVAE runs; {run_dir} is a {config['model']} "
                    f"run")
    if args.rng_seed is None:
        args.rng_seed = int.from_bytes(os.urandom(4), "little") % (2 ** 31)
        print(f"Sampling with --rng_seed {args.rng_seed}")
    if config["model"] == "musicvae":
        from audiogen.cli.generate_musicvae import run
    else:
        from audiogen.cli.generate_samplernn import run
    return run(args, config, checkpoint, run_dir)


if __name__ == "__main__":
    sys.exit(main())
