"""The `tf.distribute` strategy of a training run, and this process's place in it.

`--strategy default` trains on the device TensorFlow picks (one GPU, or the CPU).
`mirrored` trains one replica per local GPU (`tf.distribute.MirroredStrategy`); `multi_worker`
one per GPU (or one CPU) of every worker of the cluster that the standard `TF_CONFIG` variable
describes (`tf.distribute.MultiWorkerMirroredStrategy`). The batch size is the global batch,
split evenly over the replicas. The chief (the `chief` task, else worker 0) writes the run's
files; the other workers write theirs into a temporary folder that is removed at the end.
"""
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from audiogen.data.replicas import InputShard
from audiogen.training.options import STRATEGIES


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where this process trains.

    Args:
        strategy: the `tf.distribute.Strategy`, or None (one device, Keras's `fit`).
        worker_index: `int`, this worker's input pipeline (0 for the chief).
        num_workers: `int`, processes training together.
        local_replicas: `int`, replicas of this worker (its devices).
        is_chief: `bool`, this process writes the run's files.
        devices: `tuple[str]`, this worker's replica devices.
    """
    strategy: object = None
    worker_index: int = 0
    num_workers: int = 1
    local_replicas: int = 1
    is_chief: bool = True
    devices: tuple = ()

    @property
    def num_replicas(self):
        return self.num_workers * self.local_replicas

    def scope(self):
        """The strategy's scope (variables made inside are mirrored), or nothing."""
        return self.strategy.scope() if self.strategy else contextlib.nullcontext()

    def shard(self, global_batch):
        """This worker's `InputShard` of a global batch (None on one device). Raises
        ValueError when the batch does not divide evenly over the replicas."""
        if self.strategy is None:
            return None
        if global_batch % self.num_replicas:
            raise ValueError(f"--batch_size {global_batch} is the global batch and must divide "
                             f"evenly over the {self.num_replicas} replicas "
                             f"({self.num_workers} workers x {self.local_replicas} devices); "
                             f"use a multiple of {self.num_replicas}")
        return InputShard(index=self.worker_index, count=self.num_workers,
                          local_replicas=self.local_replicas,
                          replica_batch=global_batch // self.num_replicas)

    def describe(self):
        if self.strategy is None:
            return "one device"
        where = f"{self.local_replicas} devices ({', '.join(self.devices)})"
        if self.num_workers == 1:
            return f"{self.num_replicas} replicas on {where}"
        role = "chief" if self.is_chief else "not the chief"
        return (f"{self.num_replicas} replicas: worker {self.worker_index} of "
                f"{self.num_workers} ({role}), {where}")


def make_cluster(name):
    """The `Cluster` for `--strategy name`. Call it before any other TensorFlow work: a
    multi-worker strategy must start its collective runtime first. A strategy with one replica
    (e.g. `mirrored` on one GPU) trains as `default`."""
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "default":
        return Cluster()
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        index, workers, chief = 0, 1, True
    else:
        spec, task_type, task_id = _tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        chief = task_type == "chief" or ("chief" not in spec and task_id == 0)
        # TensorFlow's input-pipeline order: the chief first, then the workers.
        index = task_id + (1 if task_type == "worker" and "chief" in spec else 0)
        workers = len(spec.get("chief", [])) + len(spec.get("worker", []))
    devices = tuple(strategy.extended.worker_devices)
    if strategy.num_replicas_in_sync == 1:
        print(f"--strategy {name}: one replica ({devices[0]}); training as with --strategy "
              f"default")
        return Cluster(devices=devices)
    return Cluster(strategy, index, workers, len(devices), chief, devices)


def _tf_config():
    """`(cluster spec, task type, task index)` from `TF_CONFIG`, with clear errors."""
    text = os.environ.get("TF_CONFIG")
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not text:
        raise ValueError(f"--strategy multi_worker reads the cluster from the TF_CONFIG "
                         f"environment variable, which is not set; e.g. TF_CONFIG='{example}' "
                         f"(docs/distributed.md)")
    try:
        config = json.loads(text)
        spec, task = config["cluster"], config["task"]
        task_type, task_id = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"TF_CONFIG is not a cluster description ({e}); expected JSON such as "
                         f"{example}") from None
    if task_type not in ("chief", "worker") or task_id >= len(spec.get(task_type, [])):
        raise ValueError(f"TF_CONFIG: task {task_type!r} {task_id} is not in the cluster "
                         f"{sorted(spec)}; multi_worker trains with 'chief' and 'worker' tasks")
    return spec, task_type, task_id


def agree(cluster, value, what):
    """Check that every worker holds the same integer `value`; raise ValueError naming `what`
    when they do not (on every worker, so none waits for the others)."""
    if cluster.num_workers == 1:
        return
    strategy = cluster.strategy

    @tf.function
    def gather():
        def contribute():
            return tf.distribute.get_replica_context().all_gather(
                tf.constant([value], tf.int64), axis=0)
        return strategy.experimental_local_results(strategy.run(contribute))[0]

    values = sorted(set(int(v) for v in gather().numpy()))
    if len(values) > 1:
        raise ValueError(f"the workers disagree on {what}: {values} (this worker: {value}); "
                         f"every worker must see the same --logdir_root (a shared file system)")


def check_in_sync(cluster, model):
    """At the end of training: check that every replica holds the same weights (it waits for
    every worker, so none tears down its collective runtime while another still uses it).
    Returns a short hash of the weights; raises RuntimeError when replicas differ."""
    digest = hashlib.sha1()
    for weight in model.weights:
        variable = getattr(weight, "value", weight)
        copies = [np.asarray(c) for c in cluster.strategy.experimental_local_results(variable)]
        if any(not np.array_equal(c, copies[0]) for c in copies[1:]):
            raise RuntimeError(f"the replicas of this worker hold different values of "
                               f"{weight.path}")
        digest.update(np.ascontiguousarray(copies[0]).tobytes())
    value = int(digest.hexdigest()[:15], 16)
    try:
        agree(cluster, value, "the final weights (digest)")
    except ValueError as e:
        raise RuntimeError(str(e).split(";")[0]) from None
    return value


@contextlib.contextmanager
def write_dir(cluster, run_dir):
    """The folder this process writes the run into: `run_dir` on the chief, a temporary folder
    (removed on leaving) on the other workers."""
    if cluster.is_chief:
        yield run_dir
        return
    folder = tempfile.mkdtemp(prefix=f"audiogen-worker{cluster.worker_index}-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
