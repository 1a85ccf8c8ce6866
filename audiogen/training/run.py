"""One training run for both models: run directory, resume, checkpoints, logs and `fit`.

`prepare(task, options).execute(flags)` is the whole run; a `TrainingTask` (`samplernn_task`,
`musicvae_task`) brings what differs between the models: its settings check, datasets, model,
optimizer, how checkpoints are numbered and its own callbacks. Features every run needs are
written here, once.

Order of a run: check everything that can be checked before anything is written (settings, the
resume checkpoint against the saved config, the data), then build, restore, save the resolved
config and the flags, and `fit`.
"""
import dataclasses
import math
import os

import keras
import tensorflow as tf

from audiogen.config import save_config
from audiogen.training.callbacks import EpochCheckpoint
from audiogen.training.checkpoints import CheckpointStore, build_optimizer, save_training_args
from audiogen.training.options import RunOptions
from audiogen.training.resume import check_same_config, find_resume_checkpoint
from audiogen.training.step_logger import StepLogger

BEST_DIR = "best"


@dataclasses.dataclass
class Datasets:
    """What a task's data gives a run: `train` and `validation` (or None) `tf.data.Dataset`s,
    and a summary printed before training."""
    train: tf.data.Dataset
    validation: tf.data.Dataset
    summary: str


@dataclasses.dataclass
class Run:
    """A run in progress, as the task's hooks see it."""
    options: RunOptions
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    store: CheckpointStore
    best_store: CheckpointStore
    monitor: str
    data: Datasets
    initial_epoch: int = 0

    @property
    def run_dir(self):
        return self.options.run_dir

    def writer(self, name):
        """A TensorBoard writer for `<run>/tensorboard/<name>`."""
        return tf.summary.create_file_writer(os.path.join(self.run_dir, "tensorboard", name))


class TrainingTask:
    """What one model brings to a training run. Subclasses set `config` (the resolved model
    config) and override the methods that raise `NotImplementedError`.

    Checkpoints are numbered `epoch * steps_per_checkpoint`: 1 numbers them by epoch (SampleRNN),
    a task whose Keras epochs are evaluation periods numbers them by optimizer step.
    """
    config = None
    steps_per_checkpoint = 1
    keeps_best = False          # also keep the best checkpoint in `<run>/best/`
    default_jit_compile = False
    tensorboard_update_freq = 100

    def check(self):
        """Raise ValueError for settings that cannot work, before anything is written."""

    def configured_resume(self):
        """A checkpoint the settings name to start from (or None: the run's own)."""
        return None

    def compared_config(self):
        """The config keys a resumed run must share with its checkpoint's run."""
        return self.config

    def compared_args(self):
        """Training settings that must match the checkpoint's run too (`{name: value}`)."""
        return {}

    def datasets(self):
        raise NotImplementedError

    def build_model(self):
        raise NotImplementedError

    def build_optimizer(self):
        raise NotImplementedError

    def restore(self, run, path):
        """Restore a resumed run; returns the checkpoint's number."""
        return run.store.restore(path)

    def compile_options(self, data):
        return {}

    def epochs(self):
        raise NotImplementedError

    def callbacks(self, run):
        """The task's own callbacks, run after the checkpoint callbacks."""
        return []

    def on_checkpoint(self, run):
        """Callables `(number, path)` run after each checkpoint of the run's own store."""
        return []

    def fit_options(self, data):
        """`fit`'s `x`, `steps_per_epoch` (and any other) arguments."""
        raise NotImplementedError

    def checkpoint_policy(self):
        """`(policy, every)` of the run's own checkpoints."""
        return "Always", 1

    def log_every(self):
        """Optimizer steps between the lines of a verbose run's log."""
        return 1

    def describe_position(self, run, number):
        """Where a resumed run starts, for the console (`number`: the checkpoint's)."""
        return f"step {int(run.optimizer.iterations.numpy())}"


def prepare(task, options):
    """Check everything that can be checked before anything is written: the task's settings,
    the checkpoint to resume from against the saved config, and the data. Returns a
    `PreparedRun`; raises ValueError / FileNotFoundError naming the setting, the file or the
    config key."""
    task.check()
    resume_path = task.configured_resume() or find_resume_checkpoint(
        options.run_dir, options.resume, options.resume_from)
    if resume_path:
        check_same_config(resume_path, task.compared_config(), task.compared_args())
    data = task.datasets()
    return PreparedRun(task, options, data, resume_path)


@dataclasses.dataclass
class PreparedRun:
    """A checked run, ready to `execute`."""
    task: TrainingTask
    options: RunOptions
    data: Datasets
    resume_path: str

    def execute(self, flags):
        """Train; `flags` (a dict) is saved as the run's training arguments. Returns 0."""
        task, options, data = self.task, self.options, self.data
        print(data.summary)
        run = _start(task, options, data, self.resume_path)
        save_config(task.config, options.run_dir)
        save_training_args(options.run_dir, flags)
        run.model.fit(validation_data=data.validation, epochs=task.epochs(),
                      initial_epoch=run.initial_epoch, callbacks=_callbacks(task, run),
                      verbose=0 if options.verbose else 1, **task.fit_options(data))
        best = f" (best: {os.path.join(options.run_dir, BEST_DIR)})" if task.keeps_best else ""
        print(f"Checkpoints and logs: {options.run_dir}{best}")
        return 0


def _start(task, options, data, resume_path):
    """Build the model, optimizer and checkpoint stores; restore when resuming."""
    model = task.build_model()
    optimizer = build_optimizer(task.build_optimizer(), model)
    store = CheckpointStore(options.run_dir, model, optimizer,
                            max_to_keep=options.max_checkpoints)
    best_store = (CheckpointStore(options.run_dir, model, optimizer, max_to_keep=1,
                                  subdir=BEST_DIR) if task.keeps_best else None)
    monitor = "val_loss" if data.validation is not None else "loss"
    run = Run(options, model, optimizer, store, best_store, monitor, data)
    if resume_path:
        number = task.restore(run, resume_path)
        if best_store is not None:
            best_store.best.assign(store.best)
        run.initial_epoch = number // task.steps_per_checkpoint
        print(f"Resumed from {resume_path} at {task.describe_position(run, number)}")
    jit = task.default_jit_compile if options.jit_compile is None else bool(options.jit_compile)
    model.compile(optimizer=optimizer, jit_compile=jit, **task.compile_options(data))
    return run


def _callbacks(task, run):
    policy, every = task.checkpoint_policy()
    steps = task.steps_per_checkpoint
    callbacks = [EpochCheckpoint(run.store, every, policy, run.monitor, task.on_checkpoint(run),
                                 steps_per_epoch=steps)]
    if run.best_store is not None:
        callbacks.append(EpochCheckpoint(run.best_store, policy="Best", monitor=run.monitor,
                                         steps_per_epoch=steps))
    callbacks += task.callbacks(run)
    callbacks.append(keras.callbacks.TensorBoard(os.path.join(run.run_dir, "tensorboard"),
                                                 update_freq=task.tensorboard_update_freq))
    if run.options.verbose:
        callbacks.append(StepLogger(every=task.log_every()))
    return callbacks


def epochs_for_steps(num_steps, interval):
    """Keras epochs of `interval` steps that cover `num_steps` (rounded up)."""
    return math.ceil(num_steps / interval)
