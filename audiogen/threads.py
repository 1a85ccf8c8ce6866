"""Threads: this process's cores, one thread per TensorFlow op, and running calls concurrently.

With several sequences, a small SampleRNN generates faster as groups of sequences on their own
cores than as one batch whose small products are split between the cores (see
`audiogen.samplernn.sampler.generation_groups`); that needs each op to stay on the thread that
runs it. A large one generates faster with its ops run one at a time, each split between the
cores (`audiogen.samplernn.sampler.set_generation_threads`). TensorFlow allows either setting
only before it runs its first op.
"""
import os
import threading

import tensorflow as tf


def available_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def one_thread_per_op():
    """Run each TensorFlow op on one thread (intra-op threads: 1). Returns True when that is
    in effect, False when TensorFlow had already started with another setting (it cannot be
    changed after TensorFlow's first op; the process then keeps its setting)."""
    return _set_before_start(tf.config.threading.get_intra_op_parallelism_threads,
                             tf.config.threading.set_intra_op_parallelism_threads)


def one_op_at_a_time():
    """Run TensorFlow's ops one after another (inter-op threads: 1), each still split between
    the intra-op threads. Returns True or False as `one_thread_per_op` does."""
    return _set_before_start(tf.config.threading.get_inter_op_parallelism_threads,
                             tf.config.threading.set_inter_op_parallelism_threads)


def _set_before_start(get, set_):
    """Set a TensorFlow thread count to 1 with `set_` unless `get` says it is; False when
    TensorFlow has started with another count."""
    if get() == 1:
        return True
    try:
        set_(1)
    except RuntimeError:
        return False
    return True


def run_concurrently(calls):
    """Call every function of `calls` (no arguments), each on its own thread but the first,
    which runs on this one; returns their results in order. The first exception raised by a
    call is raised here once all have finished."""
    results = [None] * len(calls)
    errors = []

    def run(i):
        try:
            results[i] = calls[i]()
        except BaseException as e:  # re-raised below, in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(1, len(calls))]
    for thread in threads:
        thread.start()
    if calls:
        run(0)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
