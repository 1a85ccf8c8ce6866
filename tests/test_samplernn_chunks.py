"""SampleRNN generation in chunks: the same samples and logits however a clip is cut, one
compiled function for every chunk, progress reports, chunk sizes."""
import numpy as np
import pytest
import tensorflow as tf

from audiogen.samplernn import generate
from audiogen.samplernn.chunks import GROWTH, ChunkSizes, chunk_capacity
from compiled_ops import stream_engine
from test_samplernn_sampler import tiny


@pytest.fixture(scope="module")
def model():
    return tiny()


def one_call_and_chunked(model, num_samples, chunk_samples, **kwargs):
    whole = generate(model, num_samples, return_logits=True, chunk_samples=num_samples, **kwargs)
    cut = generate(model, num_samples, return_logits=True, chunk_samples=chunk_samples, **kwargs)
    return whole, cut


def assert_identical(whole, cut):
    np.testing.assert_array_equal(cut[0].numpy(), whole[0].numpy())
    np.testing.assert_array_equal(cut[1].numpy(), whole[1].numpy())     # bit for bit


@pytest.mark.parametrize("engine", ["xla", stream_engine()])
@pytest.mark.parametrize("num_samples", [96, 150])
@pytest.mark.parametrize("prime_len,groups", [(0, 1), (9, 2)])
def test_chunks_make_the_samples_of_one_call(model, engine, num_samples, prime_len, groups):
    """Chunks of 2 top frames (96 samples: 3 whole chunks; 150: 10 top frames, the last chunk of
    one frame and a part of it dropped) carry states and samples exactly: the same samples and
    logits, bit for bit, with and without a prime, in one group or two (of 2 and 1)."""
    rng = np.random.default_rng(prime_len)
    prime = rng.integers(0, 16, [3, prime_len]).astype(np.int32) if prime_len else None
    whole, cut = one_call_and_chunked(model, num_samples, 2 * model.top_frame,
                                      temperatures=[1.0, 0.7, 1.3], prime_levels=prime,
                                      rng_seed=11, engine=engine, groups=groups)
    assert cut[0].shape == (3, prime_len + num_samples)
    assert cut[1].shape == (3, num_samples, model.q_levels)
    assert_identical(whole, cut)


@pytest.mark.parametrize("engine", ["xla", stream_engine()])
@pytest.mark.parametrize("overrides,chunk_samples", [
    ({"rnn_type": "lstm", "skip_conn": True}, 1),                     # 1 top frame
    ({"frame_sizes": [4, 8, 16], "precision": "mixed_bfloat16"}, 40),  # 3 top frames
])
def test_chunks_of_other_models(engine, overrides, chunk_samples):
    """LSTM states (two per layer), three tiers (conditioning within a top frame), bfloat16
    products; chunk sizes in samples that are no multiple of the top frame."""
    model = tiny(**overrides)
    prime = np.random.default_rng(3).integers(0, 16, [2, 21]).astype(np.int32)
    assert_identical(*one_call_and_chunked(model, 130, chunk_samples, temperatures=[1.0, 0.8],
                                           prime_levels=prime, rng_seed=2, engine=engine))


def test_time_sized_chunks_make_the_same_samples(model):
    """Chunks sized by time (the default) make the samples of one call too."""
    args = dict(temperatures=[1.0, 0.9], rng_seed=4)
    whole = generate(model, 300, chunk_samples=300, **args).numpy()
    np.testing.assert_array_equal(generate(model, 300, **args).numpy(), whole)
    np.testing.assert_array_equal(generate(model, 300, **args).numpy(), whole)


@pytest.mark.parametrize("engine", ["xla", stream_engine()])
def test_one_function_serves_every_chunk(engine):
    """Every chunk, the last shorter one too, and clips of other lengths (of a chunk or more)
    and primes run the same traced function; under XLA a chunk of another length is not
    compiled anew (its frames are a tensor, not a compile-time constant)."""
    model = tiny()
    for num_samples, prime_len in ((150, 0), (70, 5), (64, 0)):
        prime = np.zeros([2, prime_len], np.int32)
        generate(model, num_samples, [1.0, 1.0], prime_levels=prime, engine=engine,
                 chunk_samples=64)
    loops = model._untracked.generate_fns
    assert list(loops) == [(2, 4, False, engine)]
    loop = loops[(2, 4, False, engine)]
    assert loop.chunk.experimental_get_tracing_count() == 1
    assert loop.prepare.experimental_get_tracing_count() == 1
    if engine == "xla":
        prepared = loop.prepare()
        states, window = loop.start(tf.zeros([2, 0], tf.int32))
        args = (prepared, states, window, tf.ones([2]), tf.fill([64, 2], 0.5))
        hlo = [loop.chunk.experimental_get_compiler_ir(*args, tf.constant(frames))(stage="hlo")
               for frames in (1, 3)]
        assert hlo[0] == hlo[1]


@pytest.mark.parametrize("groups", [1, 2])
def test_progress_reports_every_chunk(model, groups):
    calls = []
    generate(model, 150, [1.0, 0.8, 1.2], groups=groups, chunk_samples=32,
             progress=lambda done, total: calls.append((done, total)))
    chunks_per_group = 5                    # 10 top frames in chunks of 2
    assert len(calls) == groups * chunks_per_group
    assert all(total == 3 * 150 for _, total in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 3 * 150
    if groups == 1:
        assert done == [3 * 32, 3 * 64, 3 * 96, 3 * 128, 3 * 150]


class FakeLoop:
    def __init__(self, capacity):
        self.capacity, self.frames_per_second = capacity, None


def test_chunk_sizes_by_time():
    loop = FakeLoop(capacity=1000)
    sizes = ChunkSizes(loop, total_frames=5000, fixed=False)
    assert sizes.next(0) == 1                          # the first call compiles
    sizes.took(1, 2.0)                                 # ... and is slow
    assert sizes.next(1) == 1
    sizes.took(1, 0.001)                               # 1000 frames/s
    assert sizes.next(2) == GROWTH                     # growing at most GROWTH times a chunk
    sizes.took(GROWTH, GROWTH * 0.002)                 # 500 frames/s
    assert sizes.next(10) == GROWTH ** 2
    sizes.took(GROWTH ** 2, GROWTH ** 2 * 0.002)
    assert sizes.next(100) == 500                      # about a second
    sizes.took(500, 0.2)                               # 2500 frames/s
    assert sizes.next(600) == 1000                     # the capacity
    assert sizes.next(4990) == 10                      # the frames left
    # The next clip with this engine starts at the rate measured last.
    assert ChunkSizes(loop, total_frames=5000, fixed=False).next(0) == 1000


def test_fixed_chunk_sizes_and_capacity():
    loop = FakeLoop(capacity=3)
    sizes = ChunkSizes(loop, total_frames=10, fixed=True)
    assert [sizes.next(done) for done in (0, 3, 6, 9)] == [3, 3, 3, 1]
    assert chunk_capacity(16, 10, 40) == 3             # rounded up to whole top frames
    assert chunk_capacity(16, 10, 1) == 1
    assert chunk_capacity(16, 10, 10_000) == 10        # one call
    assert chunk_capacity(16, 10) == 10                # by time: at most the clip
    assert chunk_capacity(64, 10_000) == 2 ** 16 // 64
    with pytest.raises(ValueError, match="chunk_samples"):
        chunk_capacity(16, 10, 0)
