"""Frame tiers' steps for generation, with each tier's input projection folded into its RNN stack.

A frame tier's stack input `inp = frame @ W_in + b_in (+ cond)` enters the stack only through
its products with the stack's `input_kernels` M (layer 0's kernel; with `skip_conn` every later
layer's skip kernel too), so

    inp @ M = frame @ (W_in @ M) + b_in @ M (+ cond @ M).

Generation folds `W_in @ M` (`[frame_size, gates * dim]`, small) once per clip, and the tier
above multiplies all `upsample_ratio` conditioning vectors of its frame by M at once. Each input
kernel is then read once per frame of the tier above instead of once per own frame, and the top
tier's not at all: with `default.config.json` (dim 1024, 4 GRU layers, frames of 16 and 64)
generation streams 6% fewer weight bytes per sample (one 12.6 MB kernel a middle frame of four,
and the top tier's per top frame).

Reference: Mehri et al. 2017, "SampleRNN: An Unconditional End-to-End Neural Audio Generation
Model" (the tiers); the fold is plain linear algebra, computed in float32.
"""
import tensorflow as tf

from audiogen.kernels import stream_matmul
from audiogen.precision import dot


class FoldedTier:
    """One frame tier's generation step with its input projection folded (see the module).

    Args:
        tier: a built `FrameTier`.
        product: `product(x, kernel, dtype)`, as in `RNNStack.cell`.
        folded: optional, `fold_inputs(tier)` computed in another call (else here).

    `step(frame, cond_terms, states)`: `frame` `[b, frame_size]` network inputs, `cond_terms`
    the tier above's `conditioning_terms` for this frame (a list of `[b, gates * dim]`, one per
    input kernel) or None for the top tier, `states` the stack's states -> (`[b, dim]`, new
    states), as `tier.rnn.step(tier.project(frame, cond), states)`.
    """

    def __init__(self, tier, product=dot, folded=None):
        self.tier, self.product = tier, product
        self.frame_kernels, self.frame_biases = folded if folded is not None else fold_inputs(tier)

    def step(self, frame, cond_terms, states):
        terms = [tf.matmul(frame, f) + c for f, c in zip(self.frame_kernels, self.frame_biases)]
        if cond_terms is not None:
            terms = [t + c for t, c in zip(terms, cond_terms)]
        return self.tier.rnn.step(None, states, self.product, terms)

    def conditioning_terms(self, out, below):
        """The `FoldedTier` `below`'s `cond_terms` for every vector this step upsamples to:
        a list (one per input kernel of `below`) of `[b, upsample_ratio, gates * dim]`."""
        tier = self.tier
        up = tf.reshape(tier.upsample(out, self.product), [-1, tier.dim])
        shape = [-1, tier.upsample_ratio]
        return [tf.reshape(self.product(up, m, below.tier.matmul_dtype), shape + [m.shape[-1]])
                for m in below.tier.rnn.input_kernels]


def fold_inputs(tier):
    """The `tier`'s input projection folded into its stack's input kernels M: the lists
    `[W_in @ M]` (`[frame_size, gates * dim]` each) and `[b_in @ M]`."""
    kernels = tier.rnn.input_kernels
    return ([tf.matmul(tier.input_kernel, m) for m in kernels],
            [tf.linalg.matvec(m, tier.input_bias, transpose_a=True) for m in kernels])


def fold_tiers(tiers, product=dot, folded=None):
    """A `FoldedTier` per frame tier of `tiers` (top to bottom); `folded`: optional, their
    `fold_inputs` computed in another call."""
    return [FoldedTier(tier, product, f) for tier, f in zip(tiers, folded or [None] * len(tiers))]


def stream_weights(tiers, batch):
    """The weights `stream_products` multiplies through `StreamMatMul` for `batch` sequences, as
    `(kernels, rows)` pairs, each packed for its rows (see `stream_matmul.pack`): every weight a
    `FoldedTier` multiplies by, the input kernels of a lower tier for the upper tier's
    `upsample_ratio` vectors of every sequence. The top tier's input kernels are folded away and
    not packed."""
    pairs = [(lower.rnn.input_kernels, batch * upper.upsample_ratio)
             for upper, lower in zip(tiers[:-1], tiers[1:])]
    inputs = {id(k) for tier in tiers for k in tier.rnn.input_kernels}
    kernels = [k for tier in tiers for k in tier.rnn.step_kernels + [tier.upsample_kernel]
               if id(k) not in inputs]
    return pairs + [(kernels, batch)]


def pack_stream_weights(op_module, tiers, batch):
    """`stream_weights` packed: a list per pair, for `stream_products(..., packed=)`."""
    dtype = tiers[-1].matmul_dtype
    return [[stream_matmul.pack(op_module, kernel, dtype, rows) for kernel in kernels]
            for kernels, rows in stream_weights(tiers, batch)]


def stream_products(op_module, tiers, batch, packed=None):
    """The stream engine's products for the frame tiers' steps of `batch` sequences: those of
    `stream_weights` through `StreamMatMul`, on weights packed where this is called, or given
    as `pack_stream_weights` returned them in another call (`packed`); the others by `dot`."""
    dtype = tiers[-1].matmul_dtype
    products = dot
    pairs = stream_weights(tiers, batch)
    for (kernels, rows), weights in zip(pairs, packed or [None] * len(pairs)):
        products = stream_matmul.PackedProducts(op_module, kernels, dtype, rows, products,
                                                weights)
    return products
