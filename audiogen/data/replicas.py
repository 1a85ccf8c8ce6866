"""How a distributed run's input pipelines feed their replicas.

Under `tf.distribute`, each worker runs one input pipeline, and
`strategy.distribute_datasets_from_function` hands that pipeline's consecutive elements to the
worker's replicas in turn (element `k` to local replica `k % local_replicas`). A pipeline
therefore emits, for every global step, one element per local replica, in replica order:
replica `r` of worker `w` gets rows `[(w * L + r) * n, (w * L + r + 1) * n)` of the global
batch (`L` local replicas, `n` rows per replica), so its rows are those a one-device run would
give the same position of the batch.
"""
import dataclasses
import functools

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class InputShard:
    """One input pipeline of a distributed run.

    Args:
        index: `int`, this pipeline's number (the worker's index), `0 <= index < count`.
        count: `int`, input pipelines (workers).
        local_replicas: `int`, replicas this pipeline feeds (the worker's devices).
        replica_batch: `int`, rows per replica (the global batch divided by all replicas).
    """
    index: int = 0
    count: int = 1
    local_replicas: int = 1
    replica_batch: int = 1

    @property
    def pipeline_batch(self):
        """Rows this pipeline reads per global step."""
        return self.local_replicas * self.replica_batch

    @property
    def first_row(self):
        """This pipeline's first row in the global batch."""
        return self.index * self.pipeline_batch


def split_for_replicas(dataset, shard, first_row=0):
    """Each element of `dataset` (a tuple of tensors, rows first) -> `shard.local_replicas`
    elements: rows `[first_row + r * n, first_row + (r + 1) * n)` for local replica `r`
    (`n = shard.replica_batch`; fewer, or none, where a partial batch ends)."""
    rows = shard.replica_batch

    def parts(*element):
        starts = [first_row + r * rows for r in range(shard.local_replicas)]
        return functools.reduce(tf.data.Dataset.concatenate, [
            tf.data.Dataset.from_tensors(tuple(t[s:s + rows] for t in element)) for s in starts])

    return dataset.flat_map(parts)
