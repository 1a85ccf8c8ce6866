"""`python -m audiogen.cli.attribute_vectors RUN_DIR`: compute a MusicVAE run's attribute vectors
from its training data again and store them in the run directory.

Training computes them at its end and `generate.py --attribute` when a run has none; this
command is for runs trained before either did, after the training data changed, or for another
checkpoint (`<run>/checkpoints/ckpt-N`). This module also reads the `NAME=AMOUNT` values of
`generate.py --attribute`.
"""
import argparse
import math
import sys

from audiogen.cli.args import add_debug, fail, plain_warnings, run_guarded
from audiogen.cli.console import quiet_console
from audiogen.midi.attributes import ATTRIBUTES

EXAMPLE = "note_density=+1.5"


def attribute_amount(text):
    """`"note_density=+1.5"` -> `("note_density", 1.5)`; argparse error naming the value and
    what is expected."""
    name, sep, amount = str(text).partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=AMOUNT such as {EXAMPLE}, got {text!r}")
    if name not in ATTRIBUTES:
        raise argparse.ArgumentTypeError(f"unknown attribute {name!r} in {text!r}; valid "
                                         f"attributes: {', '.join(ATTRIBUTES)}")
    try:
        value = float(amount)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"the AMOUNT of {text!r} must be a finite number such "
                                         f"as +1.5 or -0.5 (units of the attribute vector)")
    return name, value


def repeated_attribute(amounts):
    """The first attribute named twice in `[(name, amount)]`, or None."""
    seen = set()
    for name, _ in amounts or ():
        if name in seen:
            return name
        seen.add(name)
    return None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m audiogen.cli.attribute_vectors", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint_path",
                        help="A MusicVAE run directory (its newest checkpoint) or a checkpoint "
                             "prefix (<run>/checkpoints/ckpt-N).")
    parser.add_argument("--config_file", default=None,
                        help="Config whose train_dir and extraction settings are used (default: "
                             "the one saved in the run directory).")
    # The default lives in audiogen.musicvae.attribute_vectors, which imports TensorFlow: not
    # before quiet_console.
    parser.add_argument("--max_slices", type=int, default=None,
                        help="Encode at most this many training slices (a seeded random "
                             "subset; default: 20000).")
    add_debug(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    quiet_console(args.debug)
    plain_warnings()
    return run_guarded(lambda: _compute(args), args.debug)


def _compute(args):
    from audiogen.config import ConfigError
    from audiogen.musicvae.attribute_vectors import DEFAULT_MAX_SLICES
    from audiogen.training.attribute_vectors import compute_for_run
    from audiogen.training.trained import CheckpointMismatchError, model_from_config, \
        read_run, restore_weights
    max_slices = DEFAULT_MAX_SLICES if args.max_slices is None else args.max_slices
    if max_slices < 4:
        return fail(f"--max_slices must be at least 4, got {args.max_slices}")
    try:
        checkpoint, run_dir, config = read_run(args.checkpoint_path, args.config_file)
    except (ConfigError, FileNotFoundError) as e:
        return fail(str(e))
    if config["model"] != "musicvae":
        return fail(f"{run_dir} is a {config['model']} run: attribute vectors are for MusicVAE "
                    f"runs")
    try:
        model = restore_weights(model_from_config(config), checkpoint)
        vectors = compute_for_run(model, config, run_dir, checkpoint, max_slices)
    except (CheckpointMismatchError, ValueError, FileNotFoundError) as e:
        return fail(str(e))
    for name in vectors.names:
        print(f"  {name}: {vectors.describe(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
