"""Threads: running calls concurrently, results in order, errors raised in the caller."""
import threading

import pytest

from audiogen.threads import available_cores, run_concurrently


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
