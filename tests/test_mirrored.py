"""Training on two replicas (two logical CPU devices, `MirroredStrategy`) against one device,
run by `mirrored_checks.py` in a process of its own."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    done = subprocess.run([sys.executable, os.path.join(HERE, "mirrored_checks.py")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_mirrored_sgd_step_with_clipping_equals_the_one_device_step(report):
    """Same global batch, SGD with clipping by global norm (a wrong gradient scale, or clipping
    per replica before the average, would move the weights by a different amount)."""
    r = report["samplernn"]
    assert r["gradient_norm"] > 10 * r["max_grad_norm"]  # clipping acts
    assert r["moved"] > 1e-3
    assert r["weight_error"] < 1e-5
    assert r["loss_two"] == pytest.approx(r["loss_one"], rel=1e-6)
    assert r["replicas_equal"]


def test_each_replica_carries_the_state_of_its_own_rows(report):
    """Replica 0 holds rows 0-1 of the one-device carried state, replica 1 rows 2-3 (with
    per-row resets inside the batch)."""
    assert report["samplernn"]["state_error"] < 1e-6


def test_mixed_float16_trains_on_two_replicas(report):
    """Loss scaling's skip condition is taken across replicas; the weights stay finite."""
    r = report["samplernn"]
    assert r["float16_finite"] and r["float16_moved"] > 1e-3


def test_evaluation_weights_replicas_by_rows_and_an_empty_replica_counts_for_nothing(report):
    expected, got = report["musicvae"]["expected"], report["musicvae"]["got"]
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
