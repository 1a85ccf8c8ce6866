"""`FrameTier`: one frame-level tier of SampleRNN, and how tiers read quantized samples."""
import keras
import tensorflow as tf

from audiogen.precision import dot, matmul_dtype
from audiogen.samplernn.rnn_stack import RNNStack


def levels_to_inputs(levels, q_levels):
    """Quantized levels `[...]` int -> float32 network inputs in [-1, 1], linear in the level.

    Frame tiers read samples in the quantized (for mu-law: companded) domain, scaled linearly to
    [-1, 1], as in the reference implementation; mu-law's expanded amplitudes would crowd near 0.
    """
    return tf.cast(levels, tf.float32) * (2.0 / (q_levels - 1)) - 1.0


class FrameTier(keras.layers.Layer):
    """One frame-level tier: frames of `frame_size` samples in, `upsample_ratio` vectors out per frame.

    Per step: `inp = frame @ W_in + b_in (+ conditioning from the tier above)`, an `RNNStack`, and a
    learned linear upsampling `out @ W_up + b_up` reshaped to `upsample_ratio` vectors of `dim`
    (the conditioning of the tier below, or of the sample-level MLP for the bottom tier).

    Args:
        frame_size: int, samples per frame.
        upsample_ratio: int, vectors emitted per frame (frame_size / frame size of the tier below;
            the bottom tier's is frame_size itself: one vector per sample).
        dim, rnn_type, num_rnn_layers, skip_conn, precision: as in `RNNStack`.

    Call: `call(frames, cond, states) -> (upsampled, new_states)` with `frames`
    `[batch, steps, frame_size]` float, `cond` `[batch, steps, dim]` or None,
    `upsampled` `[batch, steps * upsample_ratio, dim]`.
    """

    def __init__(self, frame_size, upsample_ratio, dim, rnn_type="gru", num_rnn_layers=1,
                 skip_conn=False, precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.matmul_dtype = matmul_dtype(precision)
        # === Config ===
        self.frame_size = int(frame_size)
        self.upsample_ratio = int(upsample_ratio)
        self.dim = int(dim)
        self.rnn_type = rnn_type
        self.num_rnn_layers = int(num_rnn_layers)
        self.skip_conn = bool(skip_conn)
        self.precision = precision
        # === Layers ===
        self.rnn = RNNStack(dim, num_rnn_layers, rnn_type, skip_conn, precision, name="rnn")

    def build(self, input_shape=None):
        if self.built:
            return
        d = self.dim
        self.input_kernel = self.add_weight(shape=(self.frame_size, d),
                                            initializer="glorot_uniform", name="input_kernel")
        self.input_bias = self.add_weight(shape=(d,), initializer="zeros", name="input_bias")
        self.rnn.build()
        self.upsample_kernel = self.add_weight(
            shape=(d, self.upsample_ratio * d), initializer="glorot_uniform",
            name="upsample_kernel")
        self.upsample_bias = self.add_weight(shape=(self.upsample_ratio * d,),
                                             initializer="zeros", name="upsample_bias")
        self.built = True

    def project(self, frames, cond):
        inp = dot(frames, self.input_kernel, self.matmul_dtype) + self.input_bias
        return inp if cond is None else inp + cond

    def upsample(self, out, product=dot):
        """`[..., dim]` -> `[..., upsample_ratio * dim]` (reshape to split the vectors);
        `product` as in `RNNStack.cell`."""
        return product(out, self.upsample_kernel, self.matmul_dtype) + self.upsample_bias

    def call(self, frames, cond, states):
        out, new_states = self.rnn(self.project(frames, cond), states)
        up = self.upsample(out)
        batch, steps = tf.shape(up)[0], up.shape[1]
        return tf.reshape(up, [batch, steps * self.upsample_ratio, self.dim]), new_states

    def get_config(self):
        config = super().get_config()
        config.update(frame_size=self.frame_size, upsample_ratio=self.upsample_ratio,
                      dim=self.dim, rnn_type=self.rnn_type, num_rnn_layers=self.num_rnn_layers,
                      skip_conn=self.skip_conn, precision=self.precision)
        return config
