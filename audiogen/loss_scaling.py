"""One optimizer step from gradients: the average over replicas, loss scaling for float16
products, clipping, the update.

float16 (`precision: "mixed_float16"`) has a narrow exponent range: small gradients of its
products underflow to zero. The loss is multiplied by a scale before differentiation and the
gradients are divided by it after, so they pass the float16 products in range; the scale is
dynamic (halved when a step's gradients are not finite, which step is then skipped; doubled after
`growth_interval` finite steps).

Reference: Micikevicius et al., "Mixed Precision Training", ICLR 2018.
"""
import tensorflow as tf

from audiogen.replicas import mean_over_replicas, num_replicas, replica_context


class DynamicLossScale:
    """The loss scale of one model. Its variables are not part of the model's checkpoints (a
    resumed run starts from `initial` again and adapts within a few steps).

    Args:
        initial: `float`, the first scale.
        growth_interval: `int`, finite steps after which the scale doubles.
    """

    def __init__(self, initial=2.0 ** 15, growth_interval=2000):
        self.growth_interval = int(growth_interval)
        with tf.init_scope():
            # Every replica computes the same update from the averaged gradients: the first
            # replica's write stands for all.
            first = tf.VariableAggregation.ONLY_FIRST_REPLICA
            self.scale = tf.Variable(float(initial), trainable=False, name="loss_scale",
                                     aggregation=first)
            self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                          name="loss_scale_good_steps", aggregation=first)

    def unscale(self, grads):
        """`(grads / scale, all finite)`."""
        inverse = 1.0 / self.scale
        grads = [None if g is None else g * tf.cast(inverse, g.dtype) for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads
                                if g is not None])
        return grads, finite

    def update(self, finite):
        """Grow the scale after `growth_interval` finite steps; halve it at a non-finite one."""
        grown = tf.equal(self.good_steps + 1, self.growth_interval)
        self.scale.assign(tf.where(finite, tf.where(grown, self.scale * 2.0, self.scale),
                                   tf.maximum(self.scale / 2.0, 1.0)))
        self.good_steps.assign(tf.where(finite & ~grown, self.good_steps + 1,
                                        tf.zeros([], tf.int64)))


def apply_gradients(optimizer, grads, variables, max_grad_norm=None, loss_scale=None):
    """One optimizer step from `grads`, the gradients of `scaled(loss, loss_scale)` on this
    replica's rows: averaged over the replicas (once, first, when several train in sync),
    unscaled, clipped by global norm, applied. With `loss_scale`, a step whose gradients are not
    finite changes no weight (the optimizer's step count still advances, so step-based schedules
    do not stall)."""
    grads = mean_over_replicas(list(grads))
    finite = None
    if loss_scale is not None:
        grads, finite = loss_scale.unscale(grads)
        # A non-finite gradient makes the norm non-finite; the step is skipped anyway.
        grads = [None if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in grads]
    if max_grad_norm is not None:
        grads, _ = tf.clip_by_global_norm(grads, max_grad_norm)
    # Keras's optimizers sum the gradients of the replicas again inside `apply`: each replica
    # hands over its share of the (identical) average.
    share = ([None if g is None else g * tf.constant(1 / num_replicas(), g.dtype)
              for g in grads] if num_replicas() > 1 else grads)
    if finite is None:
        optimizer.apply(share, variables)
    else:
        _apply_if_finite(optimizer, share, variables, finite)
        loss_scale.update(finite)


def _apply_if_finite(optimizer, grads, variables, finite):
    """Apply `grads` when `finite`, else only count the step. With several replicas the
    condition is taken in cross-replica context: a strategy cannot synchronize replicas (as
    `apply` does) inside a replica's own `tf.cond`."""
    def apply(grads):
        optimizer.apply(grads, variables)
        return tf.constant(True)

    def skip():
        optimizer.iterations.assign_add(1)
        return tf.constant(False)

    context = replica_context()
    if context is None:
        tf.cond(finite, lambda: apply(grads), skip)
        return

    def merged(strategy, finite, grads):
        first = strategy.experimental_local_results(finite)[0]
        tf.cond(first, lambda: strategy.experimental_local_results(
            strategy.extended.call_for_each_replica(apply, args=(grads,)))[0], skip)
    context.merge_call(merged, args=(finite, grads))


def scaled(loss, loss_scale):
    """What to differentiate: `loss`, times the scale when loss scaling is on (compute it while
    the gradient tape records)."""
    return loss if loss_scale is None else loss * tf.cast(loss_scale.scale, loss.dtype)
