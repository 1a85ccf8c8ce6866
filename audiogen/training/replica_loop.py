"""The training loop of a run on several replicas: `fit`, for a `tf.distribute` strategy.

Keras 3.11's `fit` cannot train these models on several replicas: it compiles `strategy.run`
whole with XLA (which fails on CPUs: a replica's variables live on another device than the one
XLA compiles for) and combines logs across workers in a way `MultiWorkerMirroredStrategy`
rejects. This loop runs each replica's own step (`model.replica_train_step`, which averages the
gradients over the replicas and is compiled with XLA per replica when the model is), combines
the replicas' metric values weighted by their rows (a replica may get no row of a partial
evaluation batch), and drives the same Keras callbacks as `fit` (progress bar, checkpoints,
early stopping, learning-rate schedules, TensorBoard).

Every worker stops at the same step: an interrupting signal that one worker received (its
`received` flag) is summed over the replicas with the next step's metrics, and sets every
worker's `agreed` flag (which the run's callbacks act on) after that same step.
"""
import contextlib
import re
import signal

import keras
import tensorflow as tf

from audiogen.training.guards import TrainingStopped

SUM = tf.distribute.ReduceOp.SUM
# The line of TensorFlow's error that says what happened to the other worker.
_LOST_PEER = re.compile(r"aborted by|socket closed|connection reset|failed to connect|heartbeat",
                        re.IGNORECASE)


class ReplicaLoop:
    """`fit` for a model with `replica_train_step`, `replica_test_step` and `record_metrics`.

    Args:
        strategy: the `tf.distribute.Strategy` (its scope built the model and optimizer).
        model: the compiled model (`steps_per_execution` steps run in one call).
        received: the `SignalFlag` this process's signal handlers set (see
            `audiogen.training.guards`).
        agreed: the `SignalFlag` the callbacks read: set on every worker at the same step.
    """

    def __init__(self, strategy, model, received, agreed):
        self.strategy = strategy
        self.model = model
        self.received = received
        self.agreed = agreed
        # Names of the values a replica's step returns (and, for training, of the logs), known
        # once the step function is traced.
        self._train_names, self._test_names = ([], []), []
        self._train = self._make_train_function()
        self._test = self._make_test_function()

    def fit(self, x, *, epochs, steps_per_epoch, initial_epoch=0, validation_data=None,
            callbacks=(), verbose=1):
        """Train from `initial_epoch` to `epochs`, `steps_per_epoch` global steps each, on the
        per-replica elements of `x` (one per replica and step, in replica order; repeated as
        needed), evaluating on all of `validation_data` after each epoch."""
        model = self.model
        callbacks = keras.callbacks.CallbackList(
            list(callbacks), add_history=True, add_progbar=verbose != 0, model=model,
            verbose=verbose, epochs=epochs, steps=steps_per_epoch)
        if x.cardinality() != tf.data.INFINITE_CARDINALITY:
            x = x.repeat()
        iterator = iter(self._distribute(x))
        per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
        model.stop_training = False
        callbacks.on_train_begin()
        logs = {}
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            step = 0
            while step < steps_per_epoch and not model.stop_training:
                steps = min(per_execution, steps_per_epoch - step)
                callbacks.on_train_batch_begin(step)
                with _peers_alive():
                    logs, stop = self._train(iterator, tf.constant(steps), self._local_stop())
                logs = _floats(logs)
                if float(stop) and self.agreed.signum is None:
                    # Another worker's signal, or this one's.
                    self.agreed.signum = self.received.signum or signal.SIGTERM
                step += steps
                callbacks.on_train_batch_end(step - 1, logs)
            epoch_logs = dict(logs)
            if validation_data is not None and not model.stop_training:
                epoch_logs.update({f"val_{k}": v for k, v in
                                   self.evaluate(validation_data, callbacks).items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        callbacks.on_train_end(logs)

    def evaluate(self, dataset, callbacks=None):
        """The metrics over all of `dataset` (per-replica elements, as `fit`'s `x`)."""
        self.model.reset_metrics()
        if callbacks is not None:
            callbacks.on_test_begin()
        logs = {}
        for step, element in enumerate(self._distribute(dataset)):
            with _peers_alive():
                logs = _floats(self._test(element))
            if callbacks is not None:
                callbacks.on_test_batch_end(step, logs)
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    def _local_stop(self):
        return tf.constant(0.0 if self.received.signum is None else 1.0)

    def _distribute(self, dataset):
        options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
        return self.strategy.distribute_datasets_from_function(lambda _: dataset, options)

    def _make_train_function(self):
        model, strategy, (names, logged) = self.model, self.strategy, self._train_names

        def replica(element, stop):
            values, rows = model.replica_train_step(element)
            names[:] = list(values)
            return _pack(values, rows, stop)

        @tf.function
        def train(iterator, steps, stop):
            agreed = tf.constant(0.0)
            for _ in tf.range(steps):
                totals = strategy.reduce(SUM, strategy.run(replica, args=(next(iterator), stop)),
                                         axis=None)
                logged[:] = list(model.record_metrics(_unpack(totals, names)))
                agreed = totals[-1]
            return _results(model, logged), agreed

        return train

    def _make_test_function(self):
        model, strategy, names = self.model, self.strategy, self._test_names

        def replica(element):
            values, rows = model.replica_test_step(element)
            names[:] = list(values)
            return _pack(values, rows, tf.constant(0.0))

        @tf.function
        def test(element):
            totals = strategy.reduce(SUM, strategy.run(replica, args=(element,)), axis=None)
            return model.record_metrics(_unpack(totals, names))

        return test


@contextlib.contextmanager
def _peers_alive():
    """Turn TensorFlow's errors for a worker that went away into one clear `TrainingStopped`."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError,
            tf.errors.CancelledError) as e:
        lines = [line.strip() for line in str(e.message).splitlines() if line.strip()]
        reason = next((line for line in lines if _LOST_PEER.search(line)), lines[0])
        raise TrainingStopped(
            f"another worker of the cluster stopped or cannot be reached ({reason}); start "
            f"every worker again with the same command: they resume from the last checkpoint"
        ) from None


def _pack(values, rows, stop):
    """One vector to sum over the replicas: each value times this replica's rows (0 for a
    replica without rows, even where its mean is NaN), the rows, the stop flag."""
    rows = tf.cast(rows, tf.float32)
    weighted = [tf.math.multiply_no_nan(tf.cast(v, tf.float32), rows) for v in values.values()]
    return tf.stack(weighted + [rows, tf.cast(stop, tf.float32)])


def _unpack(totals, names):
    """The replicas' values, weighted by their rows, from the summed `_pack` vectors."""
    return {name: totals[i] / totals[len(names)] for i, name in enumerate(names)}


def _results(model, names):
    """The results of the metrics `names`, read after a loop that updated them."""
    return {m.name: m.result() for m in model.metrics if m.name in names}


def _floats(logs):
    return {k: float(v) for k, v in logs.items()}

