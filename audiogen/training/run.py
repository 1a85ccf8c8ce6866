"""One training run for both models: run directory, resume, checkpoints, logs and `fit`.

`prepare(task, options).execute(flags)` is the whole run; a `TrainingTask` (`samplernn_task`,
`musicvae_task`) brings what differs between the models: its settings check, datasets, model,
optimizer, how checkpoints are numbered and its own callbacks. Features every run needs are
written here, once.

Order of a run: start the distribution strategy (`distribution.make_cluster`: before any other
TensorFlow work), check everything that can be checked before anything is written (settings,
the resume checkpoint against the saved config, the data), then build (in the strategy's
scope), restore, save the resolved config and the flags, and train: Keras's `fit` on one
device, `ReplicaLoop.fit` on several replicas. Only the chief writes into the run directory.
"""
import dataclasses
import os
import shutil

import keras
import tensorflow as tf

from audiogen.config import save_config
from audiogen.files import safe_name
from audiogen.training.callbacks import EpochCheckpoint
from audiogen.training.checkpoints import (BEST_DIR, INTERRUPTED_DIR, CheckpointStore,
                                           build_optimizer, resolve_checkpoint,
                                           save_training_args)
from audiogen.training.distribution import (Cluster, agree, check_in_sync, make_cluster,
                                            write_dir)
from audiogen.training.guards import RunGuard, SignalFlag, interrupt_signals
from audiogen.training.options import RunOptions
from audiogen.training.replica_loop import ReplicaLoop
from audiogen.training.resume import check_same_config, resume_point
from audiogen.training.step_logger import StepLogger
from audiogen.training.trained import restore_weights



@dataclasses.dataclass
class Datasets:
    """What a task's data gives a run: `train` and `validation` (or None) `tf.data.Dataset`s,
    and a summary printed before training."""
    train: tf.data.Dataset
    validation: tf.data.Dataset
    summary: str


@dataclasses.dataclass
class Run:
    """A run in progress, as the task's hooks see it; `run_dir` is the folder this process
    writes (the run directory on the chief, a temporary folder on the other workers)."""
    options: RunOptions
    cluster: Cluster
    run_dir: str
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    store: CheckpointStore
    best_store: CheckpointStore
    interrupted: CheckpointStore
    monitor: str
    data: Datasets
    initial_epoch: int = 0

    def clear_interrupted(self):
        """Remove the state saved mid-epoch, once a later checkpoint holds the run."""
        shutil.rmtree(self.interrupted.directory, ignore_errors=True)

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

    def global_batch(self):
        """Rows per optimizer step, over all replicas."""
        raise NotImplementedError

    def datasets(self, shard=None):
        """The run's `Datasets`; with an `InputShard`, this worker's per-replica elements."""
        raise NotImplementedError

    def build_model(self, batch_size):
        """The built model; `batch_size`: rows per replica."""
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
        """`fit`'s `x` and `steps_per_epoch` (None: one pass over a finite `x`), and any other
        argument."""
        raise NotImplementedError

    def epoch_steps(self, data):
        """Optimizer steps in one epoch."""
        raise NotImplementedError

    def checkpoint_policy(self):
        """`(policy, every)` of the run's own checkpoints."""
        return "Always", 1

    def log_every(self):
        """Optimizer steps between the lines of a verbose run's log."""
        return 1

    def learning_rates(self, resume_path):
        """`(requested, saved)`: the learning rate asked for now and the one the checkpoint's run
        was asked for (None when unknown). When they differ, a resumed run takes the requested
        one; otherwise it keeps the restored one (which a schedule may have lowered)."""
        return None, None

    def describe_position(self, run, number):
        """Where a resumed run starts, for the console (`number`: the checkpoint's)."""
        return f"step {int(run.optimizer.iterations.numpy())}"


def prepare(task, options, cluster=None):
    """Check everything that can be checked before anything is written: the task's settings,
    the checkpoint to resume from against the saved config, and the data. Returns a
    `PreparedRun`; raises ValueError / FileNotFoundError naming the setting, the file or the
    config key. `cluster`: a `distribution.Cluster` of one's own strategy (default: the one
    `options.strategy` names)."""
    safe_name(options.id, "--id")
    cluster = cluster or make_cluster(options.strategy)
    shard = cluster.shard(task.global_batch())
    task.check()
    resume_path, steps_done = task.configured_resume(), 0
    if not resume_path:
        resume_path, steps_done = resume_point(options.run_dir, options.resume,
                                               options.resume_from)
    if resume_path:
        check_same_config(resume_path, task.compared_config(), task.compared_args())
    init_path = _init_checkpoint(options, resume_path)
    data = task.datasets(shard)
    return PreparedRun(task, options, cluster, data, resume_path, steps_done, init_path)


def _init_checkpoint(options, resume_path):
    """The checkpoint whose weights start a new run (`options.init_from`), or None: a run that
    resumes continues its own state."""
    if not options.init_from:
        return None
    if resume_path:
        print(f"Resuming from {resume_path}: --init_from {options.init_from} is not used")
        return None
    return resolve_checkpoint(options.init_from)


@dataclasses.dataclass
class PreparedRun:
    """A checked run, ready to `execute`; `steps_done` of its first epoch were done before (a
    run resumed mid-epoch)."""
    task: TrainingTask
    options: RunOptions
    cluster: Cluster
    data: Datasets
    resume_path: str
    steps_done: int = 0
    init_path: str = None

    def execute(self, flags):
        """Train; `flags` (a dict) is saved as the run's training arguments. Returns 0, or
        raises `TrainingStopped` (interrupted: the state is saved; a non-finite loss)."""
        task, options, data, cluster = self.task, self.options, self.data, self.cluster
        print(data.summary)
        if cluster.strategy is not None:
            print(f"Training on {cluster.describe()}")
        with write_dir(cluster, options.run_dir) as folder:
            with cluster.scope():
                run = _start(task, options, cluster, folder, data, self.resume_path,
                             self.steps_done, self.init_path)
            save_config(task.config, folder)
            save_training_args(folder, flags)
            flag = SignalFlag()
            with interrupt_signals(flag):
                self._fit(run, flag)
            if cluster.strategy is not None:
                digest = check_in_sync(cluster, run.model)
                print(f"Replicas in sync at the end (weights digest {digest:015x})")
        best = f" (best: {os.path.join(options.run_dir, BEST_DIR)})" if task.keeps_best else ""
        print(f"Checkpoints and logs: {options.run_dir}{best}")
        return 0

    def _fit(self, run, flag):
        """Train from where the run stands: the rest of an epoch saved mid-way first. One
        device: Keras's `fit`; several replicas: `ReplicaLoop.fit`, whose callbacks act on the
        signal the workers agree on."""
        task, data, epochs = self.task, self.data, self.task.epochs()
        fit = task.fit_options(data)
        common = dict(validation_data=data.validation,
                      verbose=0 if self.options.verbose else 1)
        loop = None
        if run.cluster.strategy is not None:
            received, flag = flag, SignalFlag()
            loop = ReplicaLoop(run.cluster.strategy, run.model, received, flag)

        def train(end, start, steps_done=0):
            callbacks = _callbacks(task, run, flag, steps_done)
            if loop is not None:
                loop.fit(fit["x"], steps_per_epoch=task.epoch_steps(data) - steps_done,
                         epochs=end, initial_epoch=start, callbacks=callbacks, **common)
            elif steps_done:
                remaining = task.epoch_steps(data) - steps_done
                x = fit["x"] if fit["steps_per_epoch"] else fit["x"].take(remaining)
                run.model.fit(x, steps_per_epoch=remaining, epochs=end, initial_epoch=start,
                              callbacks=callbacks, **common)
            else:
                run.model.fit(epochs=end, initial_epoch=start, callbacks=callbacks, **fit,
                              **common)

        first = run.initial_epoch
        if self.steps_done and first < epochs:
            train(first + 1, first, self.steps_done)
            first += 1
        if first < epochs:
            train(epochs, first)


def _start(task, options, cluster, folder, data, resume_path, steps_done, init_path=None):
    """Build the model, optimizer and checkpoint stores (writing into `folder`); restore when
    resuming, or take the weights of `init_path` when it starts from another run's."""
    shard = cluster.shard(task.global_batch())
    batch = shard.replica_batch if shard else task.global_batch()
    model = task.build_model(batch)
    if init_path:
        _take_weights(model, task.build_model(batch), init_path)
    optimizer = build_optimizer(task.build_optimizer(), model)
    store = CheckpointStore(folder, model, optimizer, max_to_keep=options.max_checkpoints)
    best_store = (CheckpointStore(folder, model, optimizer, max_to_keep=1, subdir=BEST_DIR)
                  if task.keeps_best else None)
    interrupted = CheckpointStore(folder, model, optimizer, max_to_keep=1,
                                  subdir=INTERRUPTED_DIR, with_position=True)
    monitor = "val_loss" if data.validation is not None else "loss"
    run = Run(options, cluster, folder, model, optimizer, store, best_store, interrupted,
              monitor, data)
    agree(cluster, int(steps_done), "the steps done in the interrupted epoch")
    number = _restore(task, run, resume_path, steps_done) if resume_path else 0
    agree(cluster, number, "the checkpoint to resume from")
    if resume_path:
        if best_store is not None:
            best_store.best.assign(store.best)
        run.initial_epoch = number // task.steps_per_checkpoint
        requested, saved = task.learning_rates(resume_path)
        if requested is not None and saved is not None and requested != saved:
            optimizer.learning_rate.assign(requested)
            print(f"Learning rate {saved:g} -> {requested:g} (changed since the checkpoint's run)")
        where = task.describe_position(run, number)
        if steps_done:
            where += f", {steps_done} steps into the next epoch"
        print(f"Resumed from {resume_path} at {where}")
    jit = task.default_jit_compile if options.jit_compile is None else bool(options.jit_compile)
    model.compile(optimizer=optimizer, jit_compile=jit, **task.compile_options(data))
    return run


def _take_weights(model, source, init_path):
    """Give `model` the weights of checkpoint `init_path`, restored first into `source`, a
    model of its own: a checkpoint restores lazily whatever gets attached later, so restoring
    into the run's model would also take the source's optimizer state once `compile` attaches
    the optimizer."""
    restore_weights(source, init_path, hint="--init_from needs a checkpoint of the same model "
                                            "(every weight of the same shape)")
    model.set_weights(source.get_weights())
    print(f"Weights from {init_path}; a new run from step 0 with a fresh optimizer")


def _restore(task, run, path, steps_done):
    """Restore an epoch checkpoint (the task's way) or the state saved mid-epoch."""
    if not steps_done:
        return task.restore(run, path)
    try:
        number = run.interrupted.restore(path)
    except AssertionError as e:
        raise ValueError(f"{path}: the state saved when the run was interrupted does not fit "
                         f"this run ({e}); resume it with the same flags") from None
    run.store.counter.assign(number)
    run.store.best.assign(run.interrupted.best)
    return number


def _callbacks(task, run, flag, steps_done=0):
    policy, every = task.checkpoint_policy()
    steps = task.steps_per_checkpoint
    on_saved = [lambda _number, _path: run.clear_interrupted()] + task.on_checkpoint(run)
    callbacks = [RunGuard(flag, run, steps, steps_done),
                 EpochCheckpoint(run.store, every, policy, run.monitor, on_saved,
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
