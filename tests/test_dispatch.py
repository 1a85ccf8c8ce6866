"""The one place that decides whether a compiled op runs: switch, XLA, device, build."""
import pytest
import tensorflow as tf

from audiogen.kernels import dispatch
from compiled_ops import require_op


def test_the_environment_switch_turns_every_op_off(monkeypatch):
    require_op("stream_matmul")
    for value in ("off", "0", "false", "No"):
        monkeypatch.setenv(dispatch.KERNELS_ENV, value)
        assert not dispatch.kernels_enabled()
        assert all(dispatch.compiled_op(name) is None for name in dispatch.OP_NAMES)
        assert dispatch.op_status("lstm_cell").startswith("off")
    monkeypatch.setenv(dispatch.KERNELS_ENV, "on")
    assert dispatch.compiled_op("stream_matmul") is not None


def test_no_op_under_xla_and_only_for_cpu_tensors():
    require_op("lstm_cell")
    chosen = {}

    def probe(x):
        chosen[dispatch.inside_xla()] = dispatch.compiled_op("lstm_cell", x)
        return x

    tf.function(probe, jit_compile=True)(tf.zeros([]))
    tf.function(probe)(tf.zeros([]))
    assert chosen[True] is None and chosen[False] is not None
    with tf.device("/CPU:0"):
        on_cpu = tf.zeros([2])
    assert dispatch.on_cpu(on_cpu) and dispatch.on_cpu() == (not dispatch.gpu_visible())
    assert not dispatch.on_cpu(type("GpuTensor", (), {"device": "/job:localhost/device:GPU:0"}))


def test_an_unknown_op_name_is_an_error():
    with pytest.raises(ValueError, match="unknown compiled op"):
        dispatch.compiled_op("fast_fourier")
