"""What stops a training run early, safely: an interrupting signal, a non-finite loss.

SIGINT and SIGTERM (what a cluster scheduler sends before preemption) do not kill the run at
once: `interrupt_signals` records them, and `RunGuard`, after the current step, saves the state
of the run mid-epoch (`<run>/interrupted/`: weights, optimizer, the epoch and how many of its
steps are done) and raises `TrainingInterrupted`; the same command resumes from that step. A
second signal acts at once.

A non-finite loss raises `NonFiniteLossError` naming the step, before any checkpoint is written
with the weights it produced (`EpochCheckpoint` also refuses non-finite weights).
"""
import contextlib
import math
import os
import signal

import keras
import tensorflow as tf

from audiogen.training.checkpoints import INTERRUPTED_DIR, saved_counter

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(Exception):
    """Training ended before its last step; the message says why and what was kept."""
    exit_code = 1


class TrainingInterrupted(TrainingStopped):
    """A signal stopped training after the state was saved (`exit_code` 128 + the signal)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


class NonFiniteLossError(TrainingStopped):
    """The loss became NaN or infinite; nothing produced by that step was saved."""


class SignalFlag:
    """The first interrupting signal received while `interrupt_signals` is active (or None)."""

    def __init__(self):
        self.signum = None


@contextlib.contextmanager
def interrupt_signals(flag):
    """Record SIGINT / SIGTERM in `flag` instead of stopping at once (the previous handlers are
    put back at the first signal, so a second one acts as usual, and on leaving). Outside the
    main thread, where Python cannot set handlers, nothing is changed."""
    try:
        previous = {s: signal.getsignal(s) for s in SIGNALS}

        def record(signum, _frame):
            flag.signum = signum
            for s, handler in previous.items():
                signal.signal(s, handler)

        for s in SIGNALS:
            signal.signal(s, record)
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def weights_are_finite(model):
    """True when every weight of `model` is finite."""
    checks = [tf.reduce_all(tf.math.is_finite(v)) for v in model.weights
              if keras.backend.is_float_dtype(v.dtype)]
    return bool(tf.reduce_all(checks)) if checks else True


class RunGuard(keras.callbacks.Callback):
    """After every (compiled) step: stop on a non-finite loss, or save the run mid-epoch and stop
    when a signal arrived.

    Args:
        flag: the `SignalFlag` of `interrupt_signals`.
        run: the `audiogen.training.run.Run`; its `interrupted` store (`<run>/interrupted/`)
            keeps the steps done in the epoch in its `position`.
        steps_per_checkpoint: `int`, as the task numbers its checkpoints.
        steps_done: `int`, steps of the first epoch done before this `fit` (a resumed epoch).
    """

    def __init__(self, flag, run, steps_per_checkpoint, steps_done=0):
        super().__init__()
        self.flag = flag
        self.run = run
        self.steps_per_checkpoint = steps_per_checkpoint
        self.steps_done = steps_done
        self.epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_start = int(self.model.optimizer.iterations.numpy()) - self.steps_done
        self.steps_done = 0

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"the training loss became {float(loss)} at step {step} (epoch "
                f"{self.epoch + 1}); training stopped and no checkpoint was written after it. "
                f"Lower the learning rate, set max_grad_norm, or use float32 precision, then "
                f"resume from the last checkpoint.")
        if self.flag.signum is None:
            return
        done = step - self.epoch_start
        store = self.run.interrupted
        store.position.assign(done)
        store.best.assign(self.run.store.best)
        # Numbered as the epoch's checkpoint would be; the steps done in it are its position, so
        # the message names the folder rather than a file whose number is not the step.
        store.save(self.epoch * self.steps_per_checkpoint)
        name = signal.Signals(self.flag.signum).name
        raise TrainingInterrupted(
            f"{name}: stopped at step {step} ({done} steps into epoch {self.epoch + 1}); saved "
            f"the run's state in {store.directory}. Run the same command again to resume from "
            f"this step.", self.flag.signum)


def interrupted_state(run_dir):
    """`(checkpoint, number, steps_done)` of a run's saved mid-epoch state, or None."""
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, INTERRUPTED_DIR))
    if latest is None:
        return None
    number = saved_counter(latest)
    done = int(tf.train.load_variable(latest, "position/.ATTRIBUTES/VARIABLE_VALUE"))
    return latest, number, done
