"""Tests marked `gpu` run only where TensorFlow sees a GPU (`scripts/gpu_check.sh`)."""
import pytest


def pytest_collection_modifyitems(config, items):
    gpu_tests = [item for item in items if "gpu" in item.keywords]
    if not gpu_tests:
        return
    import tensorflow as tf
    if tf.config.list_physical_devices("GPU"):
        return
    skip = pytest.mark.skip(reason="needs a GPU (TensorFlow sees none)")
    for item in gpu_tests:
        item.add_marker(skip)
