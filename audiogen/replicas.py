"""Where a training step runs among the replicas of a `tf.distribute` strategy.

A step of a model runs once per replica on that replica's rows of the global batch (inside
`strategy.run`); outside a strategy, or with one replica, these helpers change nothing, so the
same step code serves one device and many.
"""
import tensorflow as tf


def replica_context():
    """The replica context when several replicas train in sync (else None)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync < 2:
        return None
    return context


def num_replicas():
    """Replicas training in sync (1 without a strategy)."""
    context = replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def replica_seed(seed):
    """A stateless-random seed `[2]` of this replica: `seed` itself with one replica, `seed`
    folded with the replica's id otherwise (so the replicas draw different numbers)."""
    context = replica_context()
    if context is None:
        return seed
    return tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)


def mean_over_replicas(values):
    """The mean of each tensor of `values` (a list; None entries stay None) over the
    replicas."""
    context = replica_context()
    present = [v for v in values if v is not None]
    if context is None or not present:
        return values
    reduced = iter(context.all_reduce(tf.distribute.ReduceOp.MEAN, present))
    return [None if v is None else next(reduced) for v in values]


class CompiledPerReplica:
    """`function`, run under XLA when several replicas run it and `jit_compile()` is true.

    One device compiles a whole training step (`Model.compile(jit_compile=True)`); replicas
    cannot (XLA does not hold a strategy's cross-replica calls on a CPU), so each compiles its own
    forward and backward pass: this wrapper, around that pass. A plain object, which Keras does
    not track.

    Args:
        function: the pass, `(*tensors) -> structure of tensors`.
        jit_compile: `() -> bool`, read when a step is traced (a model's `jit_compile` is set
            by `compile`, after the model is built).
    """

    def __init__(self, function, jit_compile):
        self.function = function
        self.jit_compile = jit_compile
        self.compiled = None

    def __call__(self, *args):
        if replica_context() is None or not self.jit_compile():
            return self.function(*args)
        if self.compiled is None:
            self.compiled = tf.function(self.function, jit_compile=True, autograph=False,
                                        reduce_retracing=True)
        return self.compiled(*args)
