"""Adam with one fused update kernel per variable.

Keras's Adam (TensorFlow backend) updates each variable with ~12 element-wise operations: in a
TensorFlow graph each is its own kernel and its own pass over the variable, its moments and its
gradient. TensorFlow's `ResourceApplyAdam` computes the same update (Kingma & Ba, 2015,
https://arxiv.org/abs/1412.6980, with Keras's epsilon placement:
`var -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)`) in one kernel. Under
XLA both compile to the same fused loop.
"""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="audiogen")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` (same arguments, variables and checkpoints) whose per-variable
    update is TensorFlow's fused `ResourceApplyAdam` kernel. `amsgrad=True` falls back to
    Keras's update."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not isinstance(variable, tf.Variable):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))
