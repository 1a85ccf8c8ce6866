"""A trained run read back for generation: its resolved config, the model, the weights.

`load_trained(checkpoint_path)` takes a run directory (its newest checkpoint) or a checkpoint
prefix; the model kind and its config come from the run directory unless a config is given.
"""
import dataclasses

import tensorflow as tf

from audiogen.config import ConfigError, load_config, load_run_config
from audiogen.training.checkpoints import (CheckpointStore, load_training_args,
                                           resolve_checkpoint, run_dir_of)


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not fit the model its config describes."""


@dataclasses.dataclass
class TrainedModel:
    """A model with the weights of `checkpoint`.

    Args:
        model: the built model (`SampleRNN` or `MusicVAE`) with restored weights.
        config: `dict`, the resolved config it was built from.
        checkpoint: `str`, the checkpoint prefix restored.
        run_dir: `str`, the run directory it belongs to.
        training_args: `dict`, the run's saved training flags (empty when none were saved).
    """
    model: object
    config: dict
    checkpoint: str
    run_dir: str
    training_args: dict


def read_run(checkpoint_path, config_file=None):
    """`(checkpoint, run_dir, config)` for `checkpoint_path`, without TensorFlow's model code:
    the config from `config_file` when given, else the run's saved one. Raises ConfigError or
    FileNotFoundError with a clear message."""
    checkpoint = resolve_checkpoint(checkpoint_path)
    run_dir = run_dir_of(checkpoint)
    config = load_config(config_file) if config_file else load_run_config(run_dir)
    if config is None:
        raise ConfigError(f"{run_dir} has no resolved.config.json: pass --config_file")
    return checkpoint, run_dir, config


def model_from_config(config):
    """The model (`SampleRNN` or `MusicVAE`) a resolved config describes, built."""
    if config["model"] == "musicvae":
        from audiogen.musicvae.model import MusicVAE
        return MusicVAE.from_run_config(config)
    from audiogen.samplernn.model import SampleRNN
    model = SampleRNN.from_run_config(config)
    model.build()
    return model


def restore_weights(model, checkpoint, hint="was --config_file changed?"):
    """Restore `checkpoint`'s weights (not its optimizer state) into the built `model`.

    Raises CheckpointMismatchError when they do not fit the model; its message ends with
    `hint`."""
    try:
        CheckpointStore(run_dir_of(checkpoint), model).restore(checkpoint, with_optimizer=False)
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise CheckpointMismatchError(f"{checkpoint} does not match the config's model ({e}); "
                                      f"{hint}") from None
    return model


def load_trained(checkpoint_path, config_file=None):
    """The `TrainedModel` of a run directory or checkpoint prefix (see the module)."""
    checkpoint, run_dir, config = read_run(checkpoint_path, config_file)
    model = restore_weights(model_from_config(config), checkpoint)
    return TrainedModel(model, config, checkpoint, run_dir, load_training_args(run_dir))
