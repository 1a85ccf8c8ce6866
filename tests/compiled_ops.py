"""Skipping tests that need a compiled op where it cannot be built (no C++ compiler)."""
import pytest

from audiogen.kernels.dispatch import compiled_op


def require_op(name):
    """The op module `name`, or skip the test with the reason."""
    module = compiled_op(name)
    if module is None:
        pytest.skip(f"the {name} op cannot be built or run here (no C++ compiler, a GPU, or "
                    f"AUDIOGEN_KERNELS=off); the fallback paths are tested without it")
    return module


def stream_engine():
    """The `"stream"` engine as a parameter that is skipped where its op cannot run."""
    available = compiled_op("stream_matmul") is not None
    return pytest.param("stream", marks=pytest.mark.skipif(
        not available, reason="the StreamMatMul op cannot be built or run here"))
