"""`train.py`: train a SampleRNN or a MusicVAE; the config's `"model"` key picks which.

SampleRNN takes its training parameters from the flags below (the PRiSM SampleRNN table, same
names and defaults) and its model parameters from `--config_file`. MusicVAE takes everything from
its config file (`configs/musicvae-*.config.json`); flags named like a config key override it, and
`--set key=value` overrides any key, nested ones included.
"""
import argparse
import json
import sys

from audiogen.cli.args import (add_bool, fail, int_or_none, plain_warnings, positive_float,
                               str2bool)
from audiogen.config import (MUSICVAE_EXTRA_DEFAULTS, MUSICVAE_SEED_DEFAULTS, ConfigError,
                             load_config, with_overrides)

SHARED_FLAGS = ("batch_size", "learning_rate")  # SampleRNN training flags, MusicVAE config keys
SAMPLERNN_BATCH_SIZE = 64
SAMPLERNN_LEARNING_RATE = 0.001


def build_parser():
    parser = argparse.ArgumentParser(
        prog="train.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = parser.add_argument_group("run")
    run.add_argument("--id", default="default", help="Id for the training session.")
    run.add_argument("--config_file", default="./default.config.json",
                     help="Model config (JSON, named *.config.json).")
    run.add_argument("--logdir_root", default="./logdir",
                     help="Logs and checkpoints go to <logdir_root>/<id>/.")
    run.add_argument("--output_dir", default="./generated",
                     help="Audio generated during training goes to <output_dir>/<id>/.")
    add_bool(run, "verbose", True,
             "True: each training step on its own line; False: one overwritten progress line")
    add_bool(run, "resume", True, "Resume from the newest checkpoint of this id (or --resume_from)")
    run.add_argument("--resume_from", default=None,
                     help="Checkpoint (prefix or run directory) to resume from.")

    samplernn = parser.add_argument_group("SampleRNN training")
    samplernn.add_argument("--data_dir", default=None,
                           help="Directory of training audio, searched recursively (required for "
                                "SampleRNN).")
    samplernn.add_argument("--num_epochs", type=int, default=100, help="Number of epochs.")
    samplernn.add_argument("--batch_size", type=int, default=None,
                           help=f"Mini-batch size (SampleRNN default {SAMPLERNN_BATCH_SIZE}; "
                                "MusicVAE: overrides the config).")
    samplernn.add_argument("--optimizer", default="adam", choices=("adam", "sgd", "rmsprop"))
    samplernn.add_argument("--learning_rate", type=float, default=None,
                           help=f"Learning rate (SampleRNN default {SAMPLERNN_LEARNING_RATE}; "
                                "MusicVAE: overrides the config).")
    samplernn.add_argument("--reduce_learning_rate_after", type=int_or_none, default=None,
                           help="Decay the learning rate exponentially (x e^-0.1 per epoch) "
                                "after this many epochs.")
    samplernn.add_argument("--momentum", type=float, default=0.9,
                           help="Momentum (sgd and rmsprop only).")
    samplernn.add_argument("--checkpoint_every", type=int, default=1,
                           help="Checkpoint interval in epochs.")
    samplernn.add_argument("--checkpoint_policy", default="All",
                           help="Always (or All): save every interval; Best: only when the "
                                "validation loss improved.")
    samplernn.add_argument("--max_checkpoints", type=int_or_none, default=5,
                           help="Checkpoints kept on disk; None keeps all.")
    samplernn.add_argument("--early_stopping_patience", type=int, default=3,
                           help="Epochs without validation-loss improvement before stopping.")
    add_bool(samplernn, "generate", True, "Generate audio after each new checkpoint")
    samplernn.add_argument("--max_generate_per_epoch", type=int, default=1,
                           help="Audio files generated after each checkpoint.")
    samplernn.add_argument("--sample_rate", type=int, default=22050,
                           help="Sample rate of training (the data is resampled to it) and of "
                                "generated audio.")
    samplernn.add_argument("--output_file_dur", type=positive_float, default=3,
                           help="Duration (seconds) of audio generated during training.")
    samplernn.add_argument("--temperature", type=positive_float, nargs="+", default=[0.75],
                           help="Sampling temperature(s) for audio generated during training "
                                "(cycled over the files).")
    samplernn.add_argument("--seed", default=None,
                           help="Audio file to prime generation during training.")
    samplernn.add_argument("--seed_offset", default="0",
                           help="Start of the seed excerpt: samples (e.g. 16000) or seconds "
                                "with an s suffix (e.g. 1.5s).")
    samplernn.add_argument("--num_val_batches", type=int, default=1,
                           help="Batches of pieces reserved for validation.")
    samplernn.add_argument("--steps_per_epoch", type=int, default=None,
                           help="Windows per epoch (default: the whole training set).")
    add_bool(samplernn, "jit_compile", None,
             "Compile the training step with XLA; unset: true for SampleRNN, false for MusicVAE "
             "(TensorFlow's graph mode ran its LSTM steps 15-30%% faster on a 2-core CPU)")

    musicvae = parser.add_argument_group(
        "MusicVAE config overrides (default: the value in --config_file)")
    for key, default in {**MUSICVAE_SEED_DEFAULTS, **MUSICVAE_EXTRA_DEFAULTS}.items():
        if isinstance(default, dict) or key in SHARED_FLAGS:
            continue
        kind = {bool: str2bool, int: int, float: float}.get(type(default), str)
        musicvae.add_argument(f"--{key}", type=kind, default=None,
                              help=f"config key {key} (config default {default!r})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="Override any config key, nested ones with dots, e.g. "
                             "--set encoder_params.hidden_size=64")
    return parser


def config_overrides(args):
    """{dotted.key: value} from the MusicVAE flags and --set (only those given; --batch_size and
    --learning_rate, shared with SampleRNN's training flags, are left to the caller)."""
    overrides = {}
    for key in {**MUSICVAE_SEED_DEFAULTS, **MUSICVAE_EXTRA_DEFAULTS}:
        value = getattr(args, key, None)
        if value is not None and key not in SHARED_FLAGS:
            overrides[key] = value
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set z_size=64")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


def main(argv=None):
    args = build_parser().parse_args(argv)
    plain_warnings()
    try:
        config = load_config(args.config_file)
        overrides = config_overrides(args)
        if config["model"] == "musicvae":
            overrides.update({k: getattr(args, k) for k in SHARED_FLAGS
                              if getattr(args, k) is not None})
        if overrides:
            config = with_overrides(config, overrides)
    except ConfigError as e:
        return fail(str(e))
    if config["model"] == "musicvae":
        from audiogen.cli.train_musicvae import run
    else:
        from audiogen.cli.train_samplernn import run
    return run(args, config)


if __name__ == "__main__":
    sys.exit(main())
