"""`SampleMLP`: SampleRNN's sample-level MLP, with its input layer as table lookups."""
import keras
import tensorflow as tf

from audiogen.precision import add_bias, dense_relu, dot, matmul_dtype, to_matmul_dtype


@tf.custom_gradient
def frame_lookup_sum(table, levels):
    """`sum_j table[j, levels[:, t + j]]` for every t: the sample-level MLP's input layer.

    Args: `table` `[frame_size, q_levels, dim]` float, `levels` `[batch, T + frame_size - 1]` int.
    Returns `[batch, T, dim]`.

    The gradient is written by hand: one `unsorted_segment_sum` per position j into that
    position's `[q_levels, dim]` slice. Automatic differentiation of the gathers builds the same
    sums from sparse slices of the whole table, which under XLA on CPU is many times slower and
    would be the largest cost of a training step.
    """
    frame_size, q_levels = table.shape[0], table.shape[1]
    steps = levels.shape[1] - frame_size + 1
    windows = [levels[:, j:j + steps] for j in range(frame_size)]
    out = tf.add_n([tf.gather(table[j], w) for j, w in enumerate(windows)])

    def grad(d_out):
        d_table = tf.stack([tf.math.unsorted_segment_sum(d_out, w, q_levels) for w in windows])
        return d_table, None

    return out, grad


class SampleMLP(keras.layers.Layer):
    """Sample-level MLP: predicts each sample from the previous `frame_size` samples + conditioning.

    `h0 = concat(embedding(previous frame_size levels)) @ W_in + b_in + cond` (a width-`frame_size`
    convolution over the embedded sequence, computed as lookups into `embedding @ W_in[j]`), then
    two `dim` ReLU layers and a `q_levels` output.

    Args:
        frame_size: int, the bottom tier's frame size (samples of context).
        dim: int, hidden width.
        q_levels: int, number of quantization levels (output classes).
        emb_size: int, embedding width.
        precision: as in `RNNStack`.

    Call: `call(levels, cond) -> logits` with `levels` `[batch, T + frame_size - 1]` int (the
    samples preceding each target), `cond` `[batch, T, dim]`, `logits` `[batch, T, q_levels]`.
    """

    def __init__(self, frame_size, dim, q_levels, emb_size, precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.matmul_dtype = matmul_dtype(precision)
        # === Config ===
        self.frame_size = int(frame_size)
        self.dim = int(dim)
        self.q_levels = int(q_levels)
        self.emb_size = int(emb_size)
        self.precision = precision

    def build(self, input_shape=None):
        if self.built:
            return
        d = self.dim
        self.embedding = self.add_weight(
            shape=(self.q_levels, self.emb_size),
            initializer=keras.initializers.RandomNormal(stddev=1.0), name="embedding")
        self.input_kernel = self.add_weight(
            shape=(self.frame_size, self.emb_size, d), initializer="glorot_uniform",
            name="input_kernel")
        self.input_bias = self.add_weight(shape=(d,), initializer="zeros", name="input_bias")
        self.hidden_kernel_1 = self.add_weight(shape=(d, d), initializer="he_uniform",
                                               name="hidden_kernel_1")
        self.hidden_bias_1 = self.add_weight(shape=(d,), initializer="zeros",
                                             name="hidden_bias_1")
        self.hidden_kernel_2 = self.add_weight(shape=(d, d), initializer="he_uniform",
                                               name="hidden_kernel_2")
        self.hidden_bias_2 = self.add_weight(shape=(d,), initializer="zeros",
                                             name="hidden_bias_2")
        self.output_kernel = self.add_weight(shape=(d, self.q_levels),
                                             initializer="glorot_uniform", name="output_kernel")
        self.output_bias = self.add_weight(shape=(self.q_levels,), initializer="zeros",
                                           name="output_bias")
        self.built = True

    def input_table(self):
        """`embedding @ input_kernel[j]` for every position j: `[frame_size, q_levels, dim]`."""
        dtype = self.matmul_dtype
        # A broadcast batch matmul: oneDNN runs it faster than the equivalent einsum
        # (generation folds this table once per call).
        table = tf.matmul(to_matmul_dtype(self.embedding, dtype)[None],
                          to_matmul_dtype(self.input_kernel, dtype))
        return tf.cast(table, tf.float32)

    def call(self, levels, cond):
        # The input layer as `frame_size` lookups into a per-position table instead of a
        # convolution over embeddings: q*emb*dim*frame_size MACs once per call instead of
        # emb*dim*frame_size per sample (the largest cost of training otherwise).
        h = add_bias(cond + frame_lookup_sum(self.input_table(), levels), self.input_bias)
        return self.head(dense_relu(h, self.hidden_kernel_1, self.hidden_bias_1,
                                    self.matmul_dtype))

    def head(self, h1):
        """From the first ReLU layer's output `[..., dim]` to logits `[..., q_levels]`."""
        h = dense_relu(h1, self.hidden_kernel_2, self.hidden_bias_2, self.matmul_dtype)
        return add_bias(dot(h, self.output_kernel, self.matmul_dtype), self.output_bias)

    def folded_tables(self):
        """The input layer and first hidden layer folded into lookups (for the sampler).

        Since no nonlinearity sits between them, `relu((sum_j E[x_j] @ W_in[j] + b_in + cond)
        @ W_1 + b_1)` equals `relu(sum_j T[j, x_j] + cond @ W_1 + b)` with
        `T = (E @ W_in[j]) @ W_1` `[frame_size, q_levels, dim]` and `b = b_in @ W_1 + b_1`.
        Returns `(T, b, W_1)`. `T` is computed in the precision's matmul dtype (as the training
        path multiplies by `W_1`; 8.6 GFLOP per call at dim 1024).
        """
        table = dot(self.input_table(), self.hidden_kernel_1, self.matmul_dtype)
        bias = tf.linalg.matvec(self.hidden_kernel_1, self.input_bias, transpose_a=True) \
            + self.hidden_bias_1
        return table, bias, self.hidden_kernel_1

    def get_config(self):
        config = super().get_config()
        config.update(frame_size=self.frame_size, dim=self.dim, q_levels=self.q_levels,
                      emb_size=self.emb_size, precision=self.precision)
        return config
