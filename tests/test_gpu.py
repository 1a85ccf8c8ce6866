"""On a GPU (skipped without one; `scripts/gpu_check.sh` runs them): the compiled CPU ops stay
off, SampleRNN generates with the XLA engine and MusicVAE trains under XLA, mixed_float16 trains
both models, and two GPUs train as one device."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import keras

from audiogen.doctor import report
from audiogen.kernels.dispatch import compiled_op
from audiogen.musicvae import MusicVAE
from audiogen.samplernn import SampleRNN, generate
from audiogen.samplernn.sampler import choose_engine, set_generation_threads
from audiogen.training.musicvae_task import MusicVAETask

pytestmark = pytest.mark.gpu
HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLERNN = dict(frame_sizes=[4, 16], dim=32, num_rnn_layers=1, q_type="linear", q_levels=16,
                 emb_size=8, seq_len=32)
MUSICVAE = dict(seq_len=32, z_size=8, encoder_params={"embed_size": 8, "hidden_size": 16},
                decoder_params={"embed_size": 8, "hidden_size": 16, "n_layers": 1})


def test_the_doctor_reports_the_gpu():
    lines = "\n".join(report())
    assert "GPUs: 0" not in lines
    assert "recommended here: mixed_float16 (this GPU" in lines or "no tensor cores" in lines


def test_compiled_cpu_ops_are_not_used_for_gpu_tensors():
    with tf.device("/GPU:0"):
        x = tf.ones([2, 8])
    assert compiled_op("lstm_cell", x) is None
    assert compiled_op("stream_matmul") is None  # no tensor: where ops go by default, the GPU


def test_samplernn_generates_with_the_xla_engine_and_changes_no_threads():
    assert choose_engine(1024) == "xla" and choose_engine(128) == "xla"
    assert set_generation_threads("xla") is False
    model = SampleRNN(**SAMPLERNN)
    levels = generate(model, 256, [0.9, 1.0], rng_seed=1)
    assert levels.shape == (2, 256) and np.all((0 <= levels) & (levels < 16))


def test_musicvae_trains_under_xla_on_the_gpu():
    assert MusicVAETask({"evaluate_interval": 10, "print_interval": 10}).default_jit_compile


@pytest.mark.parametrize("kind", ["samplernn", "musicvae"])
def test_mixed_float16_trains_a_tiny_model_on_the_gpu(kind):
    keras.utils.set_random_seed(0)
    if kind == "samplernn":
        model = SampleRNN(**SAMPLERNN, precision="mixed_float16").build_for_batch(8)
        x = np.random.default_rng(0).integers(0, 16, [20, 8, 48], np.int32)
        data = tf.data.Dataset.from_tensor_slices((x, np.ones([20, 8], bool)))
    else:
        model = MusicVAE(**MUSICVAE, precision="mixed_float16")
        x = np.random.default_rng(0).integers(0, 90, [160, 32], np.int32)
        data = tf.data.Dataset.from_tensor_slices(x).batch(8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True)
    history = model.fit(data, epochs=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0]
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_two_gpus_train_as_one_device():
    if len(tf.config.list_physical_devices("GPU")) < 2:
        pytest.skip("needs two GPUs")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    done = subprocess.run([sys.executable, os.path.join(HERE, "mirrored_checks.py"), "gpu"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    r = json.loads(done.stdout.strip().splitlines()[-1])["samplernn"]
    assert r["weight_error"] < 1e-4 and r["state_error"] < 1e-4 and r["replicas_equal"]
