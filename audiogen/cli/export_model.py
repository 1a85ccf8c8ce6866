"""`python -m audiogen.cli.export_model RUN OUT_DIR`: a run's weights without its optimizer state,
as a run directory to ship or share (about a third of a training checkpoint's size).

`generate.py --checkpoint_path OUT_DIR` then works as with the run itself. `--set` changes keys of
the stored config that do not change the model, e.g. a MusicVAE's `train_dir` (where its attribute
vectors are computed from) as it will be found on the users' machines.
"""
import argparse
import sys

from audiogen.cli.args import add_debug, fail, plain_warnings, run_guarded, set_overrides
from audiogen.cli.console import quiet_console

# Config keys that say where a run's data is, not what its model is.
DATA_KEYS = ("train_dir", "eval_dir", "num_workers")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m audiogen.cli.export_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint_path",
                        help="A run directory (its newest checkpoint) or a checkpoint prefix "
                             "(<run>/checkpoints/ckpt-N, <run>/best/ckpt-N).")
    parser.add_argument("output_dir", help="The new run directory.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="Change a key of the stored config, e.g. --set "
                             "train_dir=corpora/folk")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace output_dir when it exists.")
    add_debug(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    quiet_console(args.debug)
    plain_warnings()
    return run_guarded(lambda: _export(args), args.debug)


def _export(args):
    from audiogen.config import ConfigError, config_differences, with_overrides
    from audiogen.training.export import export_run, exported_size
    from audiogen.training.trained import CheckpointMismatchError, read_run
    try:
        _, run_dir, config = read_run(args.checkpoint_path)
        overrides = set_overrides(args.set)
        if overrides:
            changed = with_overrides(config, overrides)
            model_keys = [k for k in config_differences(config, changed)
                          if k.split(".")[0] not in DATA_KEYS]
            if model_keys:
                return fail(f"--set may change where data is found ({', '.join(DATA_KEYS)}), "
                            f"not the model: {', '.join(model_keys)}")
            config = changed
        prefix = export_run(args.checkpoint_path, args.output_dir, config, args.overwrite)
    except (ConfigError, FileNotFoundError, FileExistsError, CheckpointMismatchError) as e:
        return fail(str(e))
    print(f"Exported {args.checkpoint_path} to {prefix} "
          f"({exported_size(args.output_dir) / 2**20:.1f} MiB); "
          f"generate with: python generate.py --checkpoint_path {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
