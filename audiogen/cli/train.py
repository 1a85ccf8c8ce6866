"""`train.py`: train a SampleRNN or a MusicVAE; the config's `"model"` key picks which.

SampleRNN takes its training parameters from the flags below (the PRiSM SampleRNN table, same
names and defaults) and its model parameters from `--config_file`. MusicVAE takes everything from
its config file (`configs/musicvae-*.config.json`); flags named like a config key override it, and
`--set key=value` overrides any key, nested ones included.
"""
import argparse
import sys

from audiogen.cli.args import (add_bool, add_debug, fail, int_or_none, plain_warnings,
                               positive_float, run_guarded, set_overrides, str2bool)
from audiogen.cli.console import quiet_console
from audiogen.config import DEFAULTS, ConfigError, load_config, with_overrides
from audiogen.training.options import OPTIMIZERS, STRATEGIES, RunOptions
from audiogen.training.options import SampleRNNTraining as S

# SampleRNN training flags that are MusicVAE config keys too.
SHARED_FLAGS = ("batch_size", "learning_rate", "early_stopping_patience")
MUSICVAE_DEFAULTS = DEFAULTS["musicvae"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="train.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_run_flags(parser.add_argument_group("run"))
    samplernn = parser.add_argument_group("SampleRNN training")
    _add_samplernn_training_flags(samplernn)
    _add_samplernn_checkpoint_flags(samplernn)
    _add_musicvae_flags(parser.add_argument_group(
        "MusicVAE config overrides (default: the value in --config_file)"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="Override any config key, nested ones with dots, e.g. "
                             "--set encoder_params.hidden_size=64")
    add_debug(parser)
    return parser


_RUN = RunOptions()


def _add_run_flags(run):
    run.add_argument("--id", default=_RUN.id,
                     help="Name of the training run (its folder under --logdir_root).")
    run.add_argument("--config_file", default="./default.config.json",
                     help="Model config (JSON, named *.config.json).")
    run.add_argument("--logdir_root", default=_RUN.logdir_root,
                     help="Logs and checkpoints go to <logdir_root>/<id>/.")
    run.add_argument("--output_dir", default=S.output_dir,
                     help="Audio generated during training goes to <output_dir>/<id>/.")
    add_bool(run, "verbose", _RUN.verbose,
             "True: each training step on its own line; False: one overwritten progress line")
    add_bool(run, "resume", _RUN.resume,
             "Resume from the newest checkpoint of this id (or --resume_from)")
    run.add_argument("--resume_from", default=None,
                     help="Checkpoint (prefix or run directory) to resume from.")
    run.add_argument("--init_from", default=None,
                     help="Checkpoint (prefix or run directory) whose model weights start a "
                          "new run, from step 0 with a fresh optimizer: fine-tuning on other "
                          "data, or a curriculum (MusicVAE: slice_bar and n_subsequences may "
                          "differ). Every weight must fit the config's model. Ignored when "
                          "the run resumes.")
    run.add_argument("--strategy", default=_RUN.strategy, choices=STRATEGIES,
                     help="default: one device; mirrored: every local GPU; multi_worker: the "
                          "workers of the TF_CONFIG environment variable (docs/distributed.md). "
                          "--batch_size is the global batch, split over the replicas.")


def _add_samplernn_training_flags(samplernn):
    samplernn.add_argument("--data_dir", default=None,
                           help="Directory of training audio, searched recursively (required for "
                                "SampleRNN).")
    samplernn.add_argument("--num_epochs", type=int, default=S.num_epochs, help="Number of epochs.")
    samplernn.add_argument("--batch_size", type=int, default=None,
                           help=f"Mini-batch size (SampleRNN default {S.batch_size}; "
                                "MusicVAE: overrides the config).")
    samplernn.add_argument("--optimizer", default=S.optimizer, choices=OPTIMIZERS)
    samplernn.add_argument("--learning_rate", type=float, default=None,
                           help=f"Learning rate (SampleRNN default {S.learning_rate}; "
                                "MusicVAE: overrides the config).")
    samplernn.add_argument("--reduce_learning_rate_after", type=int_or_none,
                           default=S.reduce_learning_rate_after,
                           help="Decay the learning rate exponentially (x e^-0.1 per epoch) "
                                "after this many epochs.")
    samplernn.add_argument("--momentum", type=float, default=S.momentum,
                           help="Momentum (sgd and rmsprop only).")
    samplernn.add_argument("--num_val_batches", type=int, default=S.num_val_batches,
                           help="Batches of pieces reserved for validation.")
    samplernn.add_argument("--steps_per_epoch", type=int, default=S.steps_per_epoch,
                           help="Windows per epoch (default: the whole training set).")
    add_bool(samplernn, "jit_compile", _RUN.jit_compile,
             "Compile the training step with XLA; unset: true for SampleRNN, false for MusicVAE "
             "(whose LSTM steps run faster in TensorFlow's graph mode, with compiled cell ops)")


def _add_samplernn_checkpoint_flags(samplernn):
    samplernn.add_argument("--checkpoint_every", type=int, default=S.checkpoint_every,
                           help="Checkpoint interval in epochs.")
    samplernn.add_argument("--checkpoint_policy", default=S.checkpoint_policy,
                           help="Always (or All): save every interval; Best: only when the "
                                "validation loss improved.")
    samplernn.add_argument("--max_checkpoints", type=int_or_none,
                           default=_RUN.max_checkpoints,
                           help="Checkpoints kept on disk; None keeps all.")
    samplernn.add_argument("--early_stopping_patience", type=int, default=None,
                           help=f"Epochs without validation-loss improvement before stopping "
                                f"(SampleRNN default {S.early_stopping_patience}; MusicVAE: "
                                f"overrides the config, in evaluations).")
    add_bool(samplernn, "generate", S.generate, "Generate audio after each new checkpoint")
    samplernn.add_argument("--max_generate_per_epoch", type=int,
                           default=S.max_generate_per_epoch,
                           help="Audio files generated after each checkpoint.")
    samplernn.add_argument("--sample_rate", type=int, default=S.sample_rate,
                           help="Sample rate of training (the data is resampled to it) and of "
                                "generated audio.")
    samplernn.add_argument("--output_file_dur", type=positive_float,
                           default=S.output_file_dur,
                           help="Duration (seconds) of audio generated during training.")
    samplernn.add_argument("--temperature", type=positive_float, nargs="+",
                           default=list(S.temperature),
                           help="Sampling temperature(s) for audio generated during training "
                                "(cycled over the files).")
    samplernn.add_argument("--seed", default=S.prime,
                           help="Audio file to prime generation during training.")
    samplernn.add_argument("--seed_offset", default=S.prime_offset,
                           help="Start of the seed excerpt: samples (e.g. 16000) or seconds "
                                "with an s suffix (e.g. 1.5s).")


def _add_musicvae_flags(musicvae):
    for key, default in MUSICVAE_DEFAULTS.items():
        if isinstance(default, dict) or key in SHARED_FLAGS:
            continue
        kind = {bool: str2bool, int: int, float: float}.get(type(default), str)
        musicvae.add_argument(f"--{key}", type=kind, default=None,
                              help=f"config key {key} (config default {default!r})")


def config_overrides(args):
    """{dotted.key: value} from the MusicVAE flags and --set (only those given; --batch_size and
    --learning_rate, shared with SampleRNN's training flags, are left to the caller)."""
    overrides = {}
    for key in MUSICVAE_DEFAULTS:
        value = getattr(args, key, None)
        if value is not None and key not in SHARED_FLAGS:
            overrides[key] = value
    overrides.update(set_overrides(args.set))
    return overrides


def main(argv=None):
    args = build_parser().parse_args(argv)
    quiet_console(args.debug)
    plain_warnings()
    return run_guarded(lambda: _train(args), args.debug)


def _train(args):
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
    from audiogen.training.run import prepare
    options, task, flags = _run_options(args), _task(args, config), _flags(args, config)
    from audiogen.training.guards import TrainingInterrupted, TrainingStopped
    from audiogen.training.trained import CheckpointMismatchError
    try:
        prepared = prepare(task, options)
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    try:
        return prepared.execute(flags)
    except CheckpointMismatchError as e:  # --init_from's weights, found when the model is built
        return fail(str(e))
    except TrainingInterrupted as e:
        # A stop the user asked for, with the state saved: no "error:" line.
        print(e, file=sys.stderr)
        return e.exit_code
    except TrainingStopped as e:
        return fail(str(e), e.exit_code)


def _run_options(args):
    return RunOptions(id=args.id, logdir_root=args.logdir_root, resume=args.resume,
                      resume_from=args.resume_from, init_from=args.init_from,
                      max_checkpoints=args.max_checkpoints,
                      jit_compile=args.jit_compile, verbose=args.verbose,
                      strategy=args.strategy)


def _task(args, config):
    """The model's training task; TensorFlow is imported only once the flags are read."""
    if config["model"] == "musicvae":
        from audiogen.training.musicvae_task import MusicVAETask
        return MusicVAETask(config)
    from audiogen.training.samplernn_task import SampleRNNTask
    given = {name: getattr(args, name) for name in _SAMPLERNN_FLAGS}
    given = {k: v for k, v in given.items() if v is not None or k not in SHARED_FLAGS}
    settings = S(prime=args.seed, prime_offset=args.seed_offset, **given)
    return SampleRNNTask(config, settings, args.id)


_SAMPLERNN_FLAGS = (
    "data_dir", "num_epochs", "batch_size", "optimizer", "learning_rate",
    "reduce_learning_rate_after", "momentum", "checkpoint_every", "checkpoint_policy",
    "early_stopping_patience", "generate", "max_generate_per_epoch", "sample_rate",
    "output_file_dur", "temperature", "num_val_batches", "steps_per_epoch", "output_dir")


def _flags(args, config):
    """The training arguments saved in the run (the flags, with SampleRNN's resolved batch size
    and learning rate)."""
    flags = {k: v for k, v in vars(args).items() if k not in ("set", "debug")}
    if config["model"] == "samplernn":
        for name in SHARED_FLAGS:
            if flags[name] is None:
                flags[name] = getattr(S, name)
    return flags


if __name__ == "__main__":
    sys.exit(main())
