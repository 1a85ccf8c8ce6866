"""Keras callbacks shared by the models' training runs."""
import math
import warnings

import keras

from audiogen.training.guards import NonFiniteLossError, weights_are_finite

CHECKPOINT_POLICIES = ("Always", "Best")


def normalize_checkpoint_policy(policy):
    """`Always` or `Best` from a user's spelling (`All` is the seed's default name for Always)."""
    canonical = {"always": "Always", "all": "Always", "best": "Best"}.get(str(policy).lower())
    if canonical is None:
        raise ValueError(f"checkpoint_policy must be 'Always' (or 'All') or 'Best', got {policy!r}")
    return canonical


def decayed_learning_rate(epoch, base_rate, after, decay=0.1):
    """Learning rate for 0-based `epoch`: `base_rate` up to epoch `after`, then
    `base_rate * exp(-decay * k)` in the k-th epoch after it (None disables decay)."""
    if after is None or epoch < after:
        return base_rate
    return base_rate * math.exp(-decay * (epoch - after + 1))


def step_decayed_rate(rate, decay, minimum, steps=1):
    """The learning rate `steps` optimizer steps after `rate` under exponential decay:
    `rate * decay ** steps`, not below `minimum` (a rate already below it stays as it is)."""
    return max(min(rate, minimum), rate * decay ** steps)


def steps_past(start, before, after):
    """How many of the optimizer steps `before + 1 .. after` come after step `start`."""
    return max(0, after - max(before, start))


class StepDecay(keras.callbacks.Callback):
    """Multiply the optimizer's learning rate by `decay` after every optimizer step past
    `start`, down to `minimum` (Magenta MusicVAE's `decay_rate` and `min_learning_rate`; a late
    `start` keeps the fast early phase at the full rate and anneals the end).

    It updates the rate the optimizer holds rather than computing it from the step number, so
    `ReduceLROnPlateau`'s reductions compound with it and a resumed run goes on from the
    checkpoint's rate."""

    def __init__(self, decay, minimum, start=0):
        super().__init__()
        self.decay = decay
        self.minimum = minimum
        self.start = start
        self.steps_seen = 0

    def on_train_begin(self, logs=None):
        self.steps_seen = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        # Counted from the optimizer: one call may cover several steps (steps_per_execution).
        optimizer = self.model.optimizer
        steps_done = int(optimizer.iterations.numpy())
        rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        optimizer.learning_rate = step_decayed_rate(
            rate, self.decay, self.minimum, steps_past(self.start, self.steps_seen, steps_done))
        self.steps_seen = steps_done


class EpochCheckpoint(keras.callbacks.Callback):
    """Save a checkpoint every `every` epochs; with policy `Best` only when `monitor` improved.

    Args:
        store: a `CheckpointStore` (its `best` variable carries the best value across resumes).
        every: `int`, interval in epochs.
        policy: `"Always"` or `"Best"`.
        monitor: `str`, the epoch log to compare for `Best` (lower is better).
        on_saved: callables `(number, checkpoint_path)` run after each save.
        steps_per_epoch: `int`; checkpoints are numbered `epoch * steps_per_epoch` (1 numbers
            them by epoch; MusicVAE passes its evaluate_interval to number them by step).
    """

    def __init__(self, store, every=1, policy="Always", monitor="val_loss", on_saved=(),
                 steps_per_epoch=1):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.store = store
        self.every = every
        self.policy = normalize_checkpoint_policy(policy)
        self.monitor = monitor
        self.on_saved = list(on_saved)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        number = (epoch + 1) * self.steps_per_epoch
        if self.policy == "Best":
            value = (logs or {}).get(self.monitor)
            if value is None:
                warnings.warn(f"checkpoint policy Best: '{self.monitor}' is not in the epoch logs "
                              f"(have {sorted(logs or {})}); saving anyway")
            elif value >= float(self.store.best.numpy()):
                print(f"\nCheckpoint {number}: {self.monitor} {value:.4f} did not improve on "
                      f"{float(self.store.best.numpy()):.4f}; no checkpoint saved")
                return
            else:
                self.store.best.assign(value)
        if self.model is not None and not weights_are_finite(self.model):
            raise NonFiniteLossError(f"checkpoint {number}: the weights are no longer finite; "
                                     f"nothing was saved, the newest checkpoint stays "
                                     f"{self.store.latest}")
        path = self.store.save(number)
        print(f"\nSaved checkpoint {path}")
        for hook in self.on_saved:
            hook(number, path)
