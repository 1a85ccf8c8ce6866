"""Checkpoints of a run: model weights, optimizer state and the epoch (or step) reached.

A run directory holds `checkpoints/ckpt-<N>.*` files written by `tf.train.CheckpointManager`
(`N` is the epoch for SampleRNN, the step for MusicVAE), the resolved config and the training
arguments. TensorFlow writes each checkpoint under a temporary name and renames it when complete,
and the `checkpoint` index is updated only after that, so an interrupted save never becomes
"the latest checkpoint".

Restoring into an unbuilt model silently restores nothing: callers build the model and the
optimizer first (see `build_optimizer`), then `restore` asserts that every saved model variable
found its match.
"""
import json
import os

import tensorflow as tf

from audiogen.files import atomic_path

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"                # MusicVAE's best checkpoint
INTERRUPTED_DIR = "interrupted"  # the state saved mid-epoch by a signal
TRAINING_ARGS_NAME = "training.json"


class CheckpointStore:
    """Saves and finds checkpoints of one run.

    Args:
        run_dir: `str`, the run directory (`logdir_root/<id>`).
        model: the built `keras.Model`.
        optimizer: a built `keras.optimizers.Optimizer`, or None (generation only).
        max_to_keep: `int` or None (keep all).
        subdir: `str`, folder of the run directory for these checkpoints.
        with_position: `bool`, also keep a `position` (steps done in the current epoch, for a
            run saved mid-epoch).
    """

    def __init__(self, run_dir, model, optimizer=None, max_to_keep=5, subdir=CHECKPOINT_DIR,
                 with_position=False):
        self.run_dir = run_dir
        self.model = model
        self.directory = os.path.join(run_dir, subdir)
        self.counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="counter")
        # Best monitored value so far, kept in the checkpoint so `Best` survives a resume.
        self.best = tf.Variable(float("inf"), dtype=tf.float64, trainable=False, name="best")
        parts = {"model": model, "counter": self.counter, "best": self.best}
        if optimizer is not None:
            parts["optimizer"] = optimizer
        if with_position:
            self.position = tf.Variable(0, dtype=tf.int64, trainable=False, name="position")
            parts["position"] = self.position
        self.checkpoint = tf.train.Checkpoint(**parts)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.directory, max_to_keep=max_to_keep, checkpoint_name="ckpt")

    def save(self, number):
        """Write checkpoint `ckpt-<number>`; returns its path prefix."""
        self.counter.assign(number)
        return self.manager.save(checkpoint_number=number)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    @property
    def all(self):
        return list(self.manager.checkpoints)

    def restore(self, path, with_optimizer=True):
        """Restore from a checkpoint prefix; returns the saved epoch/step number.

        Raises AssertionError when a variable of the (built) model or optimizer found no match.
        """
        status = self.checkpoint.restore(path)
        if not with_optimizer:
            status.expect_partial()  # the optimizer's saved slots are not needed
        try:
            status.assert_existing_objects_matched()
        except AssertionError:
            status.expect_partial()  # the caller reports the mismatch; no warnings at exit
            raise
        return int(self.counter.numpy())


def resolve_checkpoint(path):
    """A checkpoint prefix from `path`: a prefix itself, a run directory or its checkpoints/.

    Raises FileNotFoundError with a clear message when nothing is found.
    """
    path = os.fspath(path)
    for directory in (os.path.join(path, CHECKPOINT_DIR), path):
        if os.path.isdir(directory):
            latest = tf.train.latest_checkpoint(directory)
            if latest:
                return latest
    if tf.io.gfile.glob(path + ".index"):
        return path
    raise FileNotFoundError(
        f"{path}: no checkpoint found (expected a run directory containing {CHECKPOINT_DIR}/, "
        f"or a checkpoint prefix such as <run>/{CHECKPOINT_DIR}/ckpt-3)")


def run_dir_of(checkpoint_prefix):
    """The run directory a checkpoint prefix belongs to (`<run>/checkpoints/ckpt-3`,
    `<run>/best/ckpt-500`, ...)."""
    directory = os.path.dirname(os.path.abspath(checkpoint_prefix))
    if os.path.basename(directory) in (CHECKPOINT_DIR, BEST_DIR, INTERRUPTED_DIR):
        directory = os.path.dirname(directory)
    return directory


def saved_counter(checkpoint_prefix):
    """The epoch (or step) number a checkpoint holds, read without restoring it."""
    return int(tf.train.load_variable(checkpoint_prefix, "counter/.ATTRIBUTES/VARIABLE_VALUE"))


def build_optimizer(optimizer, model):
    """Create the optimizer's slot variables so a checkpoint can restore into them."""
    optimizer.build(model.trainable_variables)
    return optimizer


def save_training_args(run_dir, args):
    """Write the training arguments (a dict) beside the checkpoints, atomically."""
    path = os.path.join(run_dir, TRAINING_ARGS_NAME)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(args, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    return path


def load_training_args(run_dir):
    """The training arguments saved in `run_dir`, or {} when there are none."""
    path = os.path.join(run_dir, TRAINING_ARGS_NAME)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)
