"""precision "mixed_float16": float16 products with loss scaling, for both models; and Keras's
global mixed policy does not leak into the models."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from audiogen.loss_scaling import DynamicLossScale, apply_gradients, scaled
from audiogen.musicvae import MusicVAE
from audiogen.precision import matmul_dtype, uses_loss_scaling
from audiogen.samplernn import SampleRNN, generate
from audiogen.samplernn.sampler import choose_engine
from audiogen.training.optimizers import FusedAdam

SAMPLERNN = dict(frame_sizes=[4, 16], dim=16, num_rnn_layers=1, q_type="linear", q_levels=16,
                 emb_size=8, seq_len=32)
MUSICVAE = dict(seq_len=32, z_size=8, encoder_params={"embed_size": 8, "hidden_size": 16},
                decoder_params={"embed_size": 8, "hidden_size": 16, "n_layers": 1})


def test_float16_precision_and_its_engine():
    assert matmul_dtype("mixed_float16") == tf.float16 and uses_loss_scaling("mixed_float16")
    assert not uses_loss_scaling("mixed_bfloat16")
    # the compiled ops have no float16 kernels: a large float16 model generates under XLA
    assert choose_engine(1024, precision="mixed_float16") == "xla"


def sgd_step(loss_scale, max_grad_norm, loss_fn, variable):
    optimizer = keras.optimizers.SGD(1.0)
    optimizer.build([variable])
    with tf.GradientTape() as tape:
        target = scaled(loss_fn(variable), loss_scale)
    apply_gradients(optimizer, tape.gradient(target, [variable]), [variable], max_grad_norm,
                    loss_scale)
    return optimizer


def test_loss_scaling_clips_after_unscaling_and_skips_non_finite_steps():
    loss_fn = lambda v: tf.reduce_sum(v * tf.constant([3.0, 4.0]))  # noqa: E731  gradient norm 5
    plain, with_scale = tf.Variable([0.0, 0.0]), tf.Variable([0.0, 0.0])
    sgd_step(None, 1.0, loss_fn, plain)
    scale = DynamicLossScale(initial=1024.0, growth_interval=2)
    sgd_step(scale, 1.0, loss_fn, with_scale)
    np.testing.assert_allclose(with_scale.numpy(), plain.numpy(), rtol=1e-6)  # [-0.6, -0.8]
    np.testing.assert_allclose(plain.numpy(), [-0.6, -0.8], rtol=1e-6)
    sgd_step(scale, 1.0, loss_fn, with_scale)
    assert float(scale.scale) == 2048.0                         # two finite steps: doubled
    before = with_scale.numpy()
    optimizer = sgd_step(scale, 1.0, lambda v: tf.reduce_sum(v) * np.inf, with_scale)
    np.testing.assert_array_equal(with_scale.numpy(), before)   # skipped
    assert float(scale.scale) == 1024.0 and int(optimizer.iterations) == 1


def samplernn_batches(model, count, rng=0):
    top = model.frame_sizes[-1]
    x = np.random.default_rng(rng).integers(0, model.q_levels,
                                            [count, 4, model.seq_len + top]).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((x, np.ones([count], bool))).repeat()


@pytest.mark.parametrize("kind", ["samplernn", "musicvae"])
def test_a_tiny_float16_model_trains_without_nan(kind):
    if kind == "samplernn":
        model = SampleRNN(precision="mixed_float16", **SAMPLERNN).build_for_batch(4)
        data = samplernn_batches(model, 4)
    else:
        model = MusicVAE(precision="mixed_float16", **MUSICVAE)
        data = tf.data.Dataset.from_tensor_slices(np.random.default_rng(0).integers(
            0, 90, [32, 32]).astype(np.int32)).batch(8).repeat()
    model.compile(optimizer=FusedAdam(3e-3), jit_compile=False)
    history = model.fit(data, steps_per_epoch=20, epochs=2, verbose=0).history
    assert all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)
    assert all(v.dtype == "float32" for v in model.trainable_variables)


def test_a_float16_checkpoint_restores_into_a_float32_model(tmp_path):
    fp16 = MusicVAE(precision="mixed_float16", **MUSICVAE)
    path = tf.train.Checkpoint(model=fp16).write(str(tmp_path / "ckpt"))
    fp32 = MusicVAE(**MUSICVAE)
    tf.train.Checkpoint(model=fp32).read(path).assert_consumed()


def test_generation_with_a_float16_model():
    model = SampleRNN(precision="mixed_float16", **SAMPLERNN).build_for_batch(1)
    out = generate(model, 40, [1.0, 0.8], rng_seed=1)
    assert out.shape == (2, 40) and out.numpy().max() < 16


def test_keras_global_mixed_policy_does_not_change_the_models():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        models = [SampleRNN(**SAMPLERNN).build_for_batch(4), MusicVAE(**MUSICVAE)]
        data = [samplernn_batches(models[0], 2),
                tf.data.Dataset.from_tensor_slices(np.zeros([8, 32], np.int32)).batch(4)]
        for model, ds in zip(models, data):
            assert model.dtype_policy.name == "float32"
            model.compile(optimizer=FusedAdam(1e-3))
            model.fit(ds.take(2), epochs=1, verbose=0)
            assert all(v.dtype == "float32" for v in model.weights)
    finally:
        keras.config.set_dtype_policy(previous)
