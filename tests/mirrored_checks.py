"""Checks of training on two replicas against one device, in a process of their own (the
device split cannot be undone): `python tests/mirrored_checks.py` (two logical CPU devices) or
`python tests/mirrored_checks.py gpu` (the first two GPUs) prints a JSON report."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ON_GPUS = sys.argv[1:] == ["gpu"]
if not ON_GPUS:
    CPU = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(CPU,
                                               [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from audiogen.data.replicas import InputShard, split_for_replicas  # noqa: E402
from audiogen.musicvae import MusicVAE  # noqa: E402
from audiogen.samplernn import SampleRNN  # noqa: E402
from audiogen.training.guards import SignalFlag  # noqa: E402
from audiogen.training.replica_loop import ReplicaLoop  # noqa: E402

STRATEGY = tf.distribute.MirroredStrategy(["/gpu:0", "/gpu:1"] if ON_GPUS else
                                          ["/cpu:0", "/cpu:1"])
TWO = InputShard(index=0, count=1, local_replicas=2, replica_batch=2)
SAMPLERNN = dict(frame_sizes=[4, 16], dim=16, rnn_type="gru", num_rnn_layers=1,
                 q_type="linear", q_levels=16, emb_size=8, seq_len=32, max_grad_norm=0.05)
MUSICVAE = dict(seq_len=32, z_size=8, encoder_params={"embed_size": 8, "hidden_size": 16},
                decoder_params={"embed_size": 8, "hidden_size": 16, "n_layers": 1})


def windows(batch=4, count=3, rng=0):
    """`count` consecutive windows of `batch` pieces, as the audio pipeline gives them."""
    top, seq = SAMPLERNN["frame_sizes"][-1], SAMPLERNN["seq_len"]
    pieces = np.random.default_rng(rng).integers(0, 16, [batch, top + count * seq], np.int32)
    xs = np.stack([pieces[:, i * seq:i * seq + seq + top] for i in range(count)])
    resets = np.zeros([count, batch], bool)
    resets[0] = True
    resets[2, 1] = resets[2, 3] = True  # rows may start new pieces on their own
    return tf.data.Dataset.from_tensor_slices((xs, resets))


def carried(model, strategy=None):
    """The carried training state per replica: a list (replicas) of `[rows, dim]` arrays."""
    variables = model._untracked.carry["train"]
    if strategy is None:
        return [[v.numpy() for v in variables]]
    copies = [strategy.experimental_local_results(v) for v in variables]
    return [[c[r].numpy() for c in copies] for r in range(len(copies[0]))]


def fit_samplernn(strategy, weights, precision="float32", steps=3):
    """SGD with clipping, `steps` windows of a global batch of 4 rows; returns (model, logs)."""
    scope = strategy.scope() if strategy else tf.init_scope()
    with scope:
        model = SampleRNN(**SAMPLERNN, precision=precision).build_for_batch(2 if strategy else 4)
        if weights is not None:
            model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False,
                      steps_per_execution=steps)
    data = windows()
    if strategy is None:
        logs = model.fit(data, epochs=1, verbose=0).history
        return model, {k: v[-1] for k, v in logs.items()}
    loop = ReplicaLoop(strategy, model, SignalFlag(), SignalFlag())
    history = loop_history(loop, split_for_replicas(data, TWO), steps)
    return model, history


def loop_history(loop, data, steps):
    logs = {}

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, epoch_logs=None):
            logs.update(epoch_logs)

    loop.fit(data, epochs=1, steps_per_epoch=steps, callbacks=[Keep()], verbose=0)
    return logs


def samplernn_report():
    keras.utils.set_random_seed(1)
    reference = SampleRNN(**SAMPLERNN).build_for_batch(4)
    start = reference.get_weights()
    # The clipping acts (the first step's gradient norm is above max_grad_norm).
    x, reset = next(iter(windows()))
    grads = reference._gradients(tf.constant(x), tf.constant(reset),
                                 [tf.zeros([4, 16])] * len(reference.initial_states(1)))[0]
    norm = float(tf.linalg.global_norm(grads))
    one, one_logs = fit_samplernn(None, start)
    two, two_logs = fit_samplernn(STRATEGY, start)
    weight_error = max(float(np.abs(a - b).max())
                       for a, b in zip(one.get_weights(), two.get_weights()))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), start))
    state_one, (state_r0, state_r1) = carried(one)[0], carried(two, STRATEGY)
    state_error = max(max(float(np.abs(s[:2] - r0).max()), float(np.abs(s[2:] - r1).max()))
                      for s, r0, r1 in zip(state_one, state_r0, state_r1))
    replicas_equal = all(
        all(np.array_equal(c[0], c[1]) for c in [STRATEGY.experimental_local_results(v.value)])
        for v in two.weights)
    half, _ = fit_samplernn(STRATEGY, start, precision="mixed_float16")
    return {"gradient_norm": norm, "max_grad_norm": SAMPLERNN["max_grad_norm"],
            "weight_error": weight_error, "moved": moved, "state_error": state_error,
            "loss_one": one_logs["loss"], "loss_two": two_logs["loss"],
            "replicas_equal": replicas_equal,
            "float16_finite": all(bool(np.isfinite(w).all()) for w in half.get_weights()),
            "float16_moved": max(float(np.abs(a - b).max())
                                 for a, b in zip(half.get_weights(), start))}


def musicvae_report():
    """Evaluation over 11 melodies in global batches of 8 on two replicas of 4 rows: the last
    batch's 3 rows all go to the first replica, the second gets none. Expected: each global
    batch's replica values weighted by their rows (the replicas' noise differs from a
    one-device batch's, so the reference runs the same 4-row steps on one device)."""
    keras.utils.set_random_seed(2)
    melodies = np.random.default_rng(3).integers(0, 90, [11, 32], np.int32)
    one = MusicVAE(**MUSICVAE)
    one.compile(optimizer=keras.optimizers.SGD(0.1))
    steps = []
    for start in (0, 8):
        parts = [one.replica_test_step((melodies[s:s + 4],)) for s in (start, start + 4)
                 if s < len(melodies)]
        rows = sum(int(n) for _, n in parts)
        steps.append({k: sum(float(v[k]) * int(n) for v, n in parts) / rows
                      for k in parts[0][0]})
    expected = {k: float(np.mean([step[k] for step in steps])) for k in steps[0]}
    with STRATEGY.scope():
        two = MusicVAE(**MUSICVAE)
        two.set_weights(one.get_weights())
        two.compile(optimizer=keras.optimizers.SGD(0.1))
    shard = InputShard(index=0, count=1, local_replicas=2, replica_batch=4)
    data = tf.data.Dataset.from_tensor_slices(melodies).batch(8).map(lambda x: (x,))
    loop = ReplicaLoop(STRATEGY, two, SignalFlag(), SignalFlag())
    return {"expected": expected, "got": loop.evaluate(split_for_replicas(data, shard))}


if __name__ == "__main__":
    print(json.dumps({"samplernn": samplernn_report(), "musicvae": musicvae_report()}))
    sys.stdout.flush()
