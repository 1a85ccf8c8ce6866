"""Training schedules as pure functions of the step (MusicVAE's beta and scheduled sampling).

Every function works on python numbers (returning a python float) and on tensors, e.g. the
optimizer's `iterations` inside a compiled `train_step` (returning a float32 tensor).
"""
import math

SAMPLING_SCHEDULES = ("constant", "inverse_sigmoid")


def _is_python_number(*values):
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def beta_schedule(step, start_beta, end_beta, duration):
    """KL weight: linear from `start_beta` at step 0 to `end_beta` at `duration`, then constant.

    `duration <= 0` gives `end_beta` at every step.
    """
    if _is_python_number(step, start_beta, end_beta, duration):
        if duration <= 0:
            return float(end_beta)
        frac = min(max(step / duration, 0.0), 1.0)
        return float(start_beta + (end_beta - start_beta) * frac)
    import tensorflow as tf
    step = tf.cast(step, tf.float32)
    duration = tf.cast(duration, tf.float32)
    start_beta = tf.cast(start_beta, tf.float32)
    end_beta = tf.cast(end_beta, tf.float32)
    frac = tf.where(duration > 0,
                    tf.clip_by_value(step / tf.maximum(duration, 1e-12), 0.0, 1.0), 1.0)
    return start_beta + (end_beta - start_beta) * frac


def sampling_probability(step, schedule, rate):
    """Probability of feeding the model's own sample (instead of the truth) at a decoder step.

    Args:
        step: training step (python number or tensor).
        schedule: `"constant"`: the probability is `rate` (0.0 = pure teacher forcing, 1.0 =
            always sampled). `"inverse_sigmoid"`: the teacher-forcing probability is
            `k / (k + exp(step / k))` with `k = rate` (>= 1, in steps), so the sampling
            probability `1 - k / (k + exp(step / k)) = sigmoid(step / k - ln k)` rises from
            `1 / (k + 1)` at step 0 towards 1 (computed in the overflow-free sigmoid form).
        rate: see `schedule`.

    Reference: Bengio et al., "Scheduled Sampling for Sequence Prediction with Recurrent Neural
    Networks", 2015; Roberts et al., ICML 2018.
    """
    if schedule not in SAMPLING_SCHEDULES:
        raise ValueError(f"sampling schedule must be one of {list(SAMPLING_SCHEDULES)}, "
                         f"got {schedule!r}")
    if schedule == "inverse_sigmoid" and _is_python_number(rate) and rate < 1:
        raise ValueError(f"the inverse_sigmoid schedule needs rate (its k, in steps) >= 1, "
                         f"got {rate!r}")
    if _is_python_number(step, rate):
        if schedule == "constant":
            return float(rate)
        x = step / rate - math.log(rate)
        if x >= 0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)
    import tensorflow as tf
    rate = tf.cast(rate, tf.float32)
    if schedule == "constant":
        return tf.broadcast_to(rate, tf.shape(step))
    k = rate
    return tf.sigmoid(tf.cast(step, tf.float32) / k - tf.math.log(k))
