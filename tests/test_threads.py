"""Threads: running calls concurrently, results in order, errors raised in the caller;
TensorFlow's thread settings for generation."""
import os
import subprocess
import sys
import threading

import pytest

from audiogen.threads import available_cores, run_concurrently

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_concurrently_returns_results_in_order_from_several_threads():
    barrier = threading.Barrier(3, timeout=10)   # all three calls must run at the same time

    def call(i):
        barrier.wait()
        return i, threading.get_ident()

    results = run_concurrently([lambda i=i: call(i) for i in range(3)])
    assert [r[0] for r in results] == [0, 1, 2]
    assert results[0][1] == threading.get_ident()          # the first on the caller's thread
    assert len({r[1] for r in results}) == 3


def test_run_concurrently_raises_a_calls_error_after_all_finish():
    finished = []

    def slow():
        finished.append("slow")
        return 1

    def broken():
        raise ValueError("bad group")

    with pytest.raises(ValueError, match="bad group"):
        run_concurrently([broken, slow])
    assert finished == ["slow"]
    assert run_concurrently([]) == []


def test_available_cores():
    assert available_cores() >= 1


def run_python(script):
    """`script`'s printed words, run in a new Python process (TensorFlow's thread settings
    hold for a whole process and can be made only before its first op)."""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_generation_threads_are_set_before_tensorflow_starts():
    """The stream engine's setting (one op at a time) and the XLA engine's (one thread per op),
    both in effect after TensorFlow's first op."""
    assert run_python("""
import tensorflow as tf
from audiogen.samplernn.sampler import set_generation_threads
from audiogen.threads import one_thread_per_op
assert set_generation_threads("stream")
assert set_generation_threads("xla")
t = tf.config.threading
print(t.get_inter_op_parallelism_threads(), t.get_intra_op_parallelism_threads())
tf.constant(1.0) + 1.0
assert set_generation_threads("stream")           # already in effect
print(one_thread_per_op(), tf.config.threading.get_intra_op_parallelism_threads())
""") == ["1", "1", "True", "1"]


def test_one_op_at_a_time_refused_after_tensorflow_started_with_other_threads():
    assert run_python("""
import tensorflow as tf
from audiogen.threads import one_op_at_a_time
tf.config.threading.set_inter_op_parallelism_threads(2)
tf.constant(1.0) + 1.0
print(one_op_at_a_time(), tf.config.threading.get_inter_op_parallelism_threads())
""") == ["False", "2"]
