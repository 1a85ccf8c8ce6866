import keras
import numpy as np
import pytest
import tensorflow as tf

from audiogen.training.checkpoints import build_optimizer
from audiogen.training.optimizers import FusedAdam

SHAPES = ([12, 5], [5])


def run_steps(optimizer, steps, jit_compile, init=None):
    """Variables of SHAPES after `steps` updates with fixed random gradients."""
    rng = np.random.default_rng(0)
    init = init or [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    variables = [keras.Variable(x) for x in init]
    optimizer.build(variables)

    @tf.function(jit_compile=jit_compile)
    def step(grads):
        optimizer.apply(grads, variables)

    for _ in range(steps):
        step([rng.normal(size=s).astype(np.float32) * 3 for s in SHAPES])
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_updates_as_keras_adam(jit_compile, amsgrad):
    def schedule():
        return keras.optimizers.schedules.ExponentialDecay(0.05, 3, 0.5)

    expected = run_steps(keras.optimizers.Adam(schedule(), amsgrad=amsgrad), 6, jit_compile)
    fused = FusedAdam(schedule(), amsgrad=amsgrad)
    got = run_steps(fused, 6, jit_compile)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert int(fused.iterations.numpy()) == 6
    start = [np.random.default_rng(0).normal(size=s).astype(np.float32) for s in SHAPES]
    assert all(np.abs(g - s).max() > 0.05 for g, s in zip(got, start))   # it did move


def test_fused_adam_config_and_checkpoint_interchange(tmp_path):
    fused = FusedAdam(learning_rate=3e-3, beta_1=0.8, epsilon=1e-6)
    config = fused.get_config()
    again = FusedAdam.from_config(config)
    assert again.get_config() == config and isinstance(again, FusedAdam)
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(fused)) \
        .__class__ is FusedAdam

    # A checkpoint written with Keras's Adam restores into FusedAdam (same slot variables).
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain = build_optimizer(keras.optimizers.Adam(0.01), model)
    plain.apply([tf.ones_like(v) for v in model.trainable_variables], model.trainable_variables)
    path = tf.train.Checkpoint(model=model, optimizer=plain).write(str(tmp_path / "ckpt"))
    restored = build_optimizer(FusedAdam(0.01), model)
    tf.train.Checkpoint(model=model, optimizer=restored).read(path).assert_consumed()
    for a, b in zip(plain.variables, restored.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
