"""`SampleFrame`: the samples of one bottom frame of SampleRNN generation in one op.

Used by the stream engine of `audiogen.samplernn.engines` for its per-sample loop: the
sample-level MLP and the inverse-CDF draw of each of the frame's samples, with the two products
split between the intra-op threads (see `sample_frame.cc`). Compiled on first use (see
`audiogen.kernels.compiled`); `load()` returns None, with a warning, when that is impossible,
and the sampler keeps its XLA-compiled loop.
"""
import functools
import os

from audiogen.kernels import compiled

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample_frame.cc")


@functools.lru_cache(maxsize=None)
def load():
    """The loaded op module (built on first use), or None with a warning saying why."""
    return compiled.load(SOURCE, "SampleFrame", "the XLA-compiled per-sample loop")
