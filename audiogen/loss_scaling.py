"""One optimizer step from a loss: loss scaling for float16 products, clipping, the update.

float16 (`precision: "mixed_float16"`) has a narrow exponent range: small gradients of its
products underflow to zero. The loss is multiplied by a scale before differentiation and the
gradients are divided by it after, so they pass the float16 products in range; the scale is
dynamic (halved when a step's gradients are not finite, which step is then skipped; doubled after
`growth_interval` finite steps).

Reference: Micikevicius et al., "Mixed Precision Training", ICLR 2018.
"""
import tensorflow as tf


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
            self.scale = tf.Variable(float(initial), trainable=False, name="loss_scale")
            self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                          name="loss_scale_good_steps")

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


def gradient_step(optimizer, tape, target, variables, max_grad_norm=None, loss_scale=None):
    """Differentiate `target` (`scaled(loss, loss_scale)`, computed while `tape` recorded),
    unscale the gradients, clip them by global norm and apply them. With `loss_scale`, a step
    whose gradients are not finite changes no weight (the optimizer's step count still
    advances, so step-based schedules do not stall)."""
    if loss_scale is None:
        grads = tape.gradient(target, variables)
        if max_grad_norm is not None:
            grads, _ = tf.clip_by_global_norm(grads, max_grad_norm)
        optimizer.apply(grads, variables)
        return
    grads, finite = loss_scale.unscale(tape.gradient(target, variables))
    if max_grad_norm is not None:
        # A non-finite gradient makes the norm non-finite; the step is skipped anyway.
        grads = [tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        grads, _ = tf.clip_by_global_norm(grads, max_grad_norm)

    def apply():
        optimizer.apply(grads, variables)
        return tf.constant(True)

    def skip():
        optimizer.iterations.assign_add(1)
        return tf.constant(False)

    tf.cond(finite, apply, skip)
    loss_scale.update(finite)


def scaled(loss, loss_scale):
    """What to differentiate: `loss`, times the scale when loss scaling is on (compute it while
    the gradient tape records)."""
    return loss if loss_scale is None else loss * tf.cast(loss_scale.scale, loss.dtype)
