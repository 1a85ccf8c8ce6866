"""SampleRNN's two generation engines: one loop skeleton (`generation_loop`), two ways to run it.

* `XlaEngine`: the whole loop compiled with XLA. Best for small models, whose weights stay in
  the caches and whose steps are many small operations; the sample buffer is a tensor updated in
  place.
* `StreamEngine`: the frame tiers as a TensorFlow graph whose products with the large weights go
  through the compiled `StreamMatMul` op (each weight packed once per clip, in `prepare`), and
  each bottom frame's samples through the `SampleFrame` op (or, where it cannot be built, an
  XLA-compiled loop). For models whose weights far exceed the caches, so that every sample
  streams them from memory: the ops stream them faster, and bfloat16 weights with half the
  bytes. In a graph every update of a tensor copies it, so the sample buffer is a TensorArray.
"""
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from audiogen.kernels import stream_matmul
from audiogen.kernels.dispatch import compiled_op
from audiogen.precision import dot, to_matmul_dtype
from audiogen.samplernn.folded_tiers import pack_stream_weights, stream_products, stream_weights
from audiogen.samplernn.generation_loop import GenerationLoop, whole_top_frames

__all__ = ["ENGINE_CLASSES", "StreamEngine", "XlaEngine", "whole_top_frames"]


class XlaEngine(GenerationLoop):
    """The whole loop under XLA; the bottom tier's upsampling is folded with the MLP's first
    hidden layer, so its conditioning costs one matrix product per bottom frame. Prepared:
    that folded kernel `[dim, f0 * dim]` and its bias `[f0 * dim]`."""
    jit_compile = True

    def prepare_tensors(self, table, bias1, w1):
        bottom, dim, f0 = self.model.tiers[-1], self.model.dim, self.f0
        up_kernel = to_matmul_dtype(tf.reshape(
            tf.einsum("dfe,ek->dfk", tf.reshape(bottom.upsample_kernel, [dim, f0, dim]), w1),
            [dim, f0 * dim]), bottom.matmul_dtype)
        up_bias = tf.reshape(tf.matmul(tf.reshape(bottom.upsample_bias, [f0, dim]), w1) + bias1,
                             [f0 * dim])
        return [up_kernel, up_bias]

    def bind(self, prepared):
        up_kernel, up_bias = prepared
        bottom, dim, f0 = self.model.tiers[-1], self.model.dim, self.f0
        self.product = dot
        self.bottom_conditioning = lambda out: tf.reshape(
            dot(out, up_kernel, bottom.matmul_dtype) + up_bias, [self.batch, f0, dim])
        self.frame_samples = self.frame_samples_loop

    def new_buffer(self, window, frames):
        """The time-major buffer: `window` `[top, b]` followed by room for `capacity` top
        frames (a static shape: XLA's)."""
        rows = self.capacity * self.top
        return tf.concat([window, tf.zeros([rows, self.batch], tf.int32)], axis=0)

    def new_logits(self, frames):
        rows = self.capacity * self.top
        shape = [rows, self.batch, self.model.q_levels] if self.return_logits else []
        return tf.zeros(shape, tf.float32)

    def window(self, buffer, pos, size):
        """Rows `[pos - size, pos)`: `[size, b]`."""
        # A dynamic slice: with `tf.slice` XLA would make a start computed from the chunk's
        # frames a compile-time constant, compiling the chunk anew for every length.
        return xla.dynamic_slice(buffer, tf.stack([pos - size, 0]), [size, self.batch])

    def put_rows(self, buffer, rows, pos):
        # In place under XLA (XLA fuses a scatter into a loop that rewrites the whole buffer).
        start = [pos] + [0] * (len(rows.shape) - 1)
        return xla.dynamic_update_slice(buffer, rows, tf.stack(start))

    def stacked(self, buffer, logits):
        return buffer, logits


class StreamEngine(GenerationLoop):
    """The frame tiers as a TensorFlow graph over the `StreamMatMul` op, each bottom frame's
    samples through `SampleFrame` (see the module). Needs the ops (`compiled_op`). Prepared:
    the first hidden layer's bias `[dim]`, the packed weights (`pack_stream_weights`, the first
    hidden kernel's, and `SampleFrame`'s hidden and output kernels where the op runs)."""
    jit_compile = False

    def __init__(self, model, batch, capacity, return_logits):
        dtype = model.tiers[-1].matmul_dtype
        self.matmul_op = compiled_op("stream_matmul", dtype=dtype)
        self.frame_op = compiled_op("sample_frame", dtype=dtype)
        super().__init__(model, batch, capacity, return_logits)

    def prepare_tensors(self, table, bias1, w1):
        op, mlp, b = self.matmul_op, self.model.mlp, self.batch
        dtype = self.model.tiers[-1].matmul_dtype
        first_hidden = stream_matmul.pack(op, w1, dtype, b * self.f0)
        frame_kernels = [] if self.frame_op is None else [
            op.stream_pack(tf.convert_to_tensor(kernel, tf.float32), T=mlp.matmul_dtype)
            for kernel in (mlp.hidden_kernel_2, mlp.output_kernel)]
        return [bias1, pack_stream_weights(op, self.model.tiers, b), first_hidden,
                frame_kernels]

    def bind(self, prepared):
        bias1, tier_weights, first_hidden_weight, frame_kernels = prepared
        model, b, f0, dim = self.model, self.batch, self.f0, self.model.dim
        bottom, w1 = model.tiers[-1], model.mlp.hidden_kernel_1
        self.product = stream_products(self.matmul_op, model.tiers, b, tier_weights)
        first_hidden = stream_matmul.PackedProducts(self.matmul_op, [w1], bottom.matmul_dtype,
                                                    b * f0, packed=[first_hidden_weight])

        def bottom_conditioning(out):
            # Upsampling, then the first hidden layer on all f0 vectors at once: folding the two
            # (as the XLA engine does) would cost 2 dim^3 f0 operations per clip.
            up = tf.reshape(bottom.upsample(out, self.product), [b * f0, dim])
            return tf.reshape(first_hidden(up, w1, bottom.matmul_dtype) + bias1, [b, f0, dim])

        self.bottom_conditioning = bottom_conditioning
        if self.frame_op is not None:
            self.frame_samples = self._frame_op_samples(frame_kernels)
        else:
            # As graph ops the loop's many small operations would cost more than the products.
            self.frame_samples = tf.function(self.frame_samples_loop, jit_compile=True,
                                             autograph=False)

    def _frame_op_samples(self, packed):
        """The `SampleFrame` op with the MLP's hidden and output kernels `packed` (in
        `prepare`); both products split between the threads."""
        mlp = self.model.mlp

        def frame_samples(window, cond, uniform_rows):
            return self.frame_op.sample_frame(
                self.table, cond, window, uniform_rows, self.inv_temp, packed[0],
                tf.convert_to_tensor(mlp.hidden_bias_2), packed[1],
                tf.convert_to_tensor(mlp.output_bias))

        return frame_samples

    def new_buffer(self, window, frames):
        """A TensorArray of `top + frames * top` rows `[b]`, the first `top` the `window`."""
        array = tf.TensorArray(tf.int32, size=(frames + 1) * self.top,
                               element_shape=[self.batch])
        return array.scatter(tf.range(self.top), window)

    def new_logits(self, frames):
        return tf.TensorArray(tf.float32, size=frames * self.top if self.return_logits else 0,
                              element_shape=[self.batch, self.model.q_levels])

    def window(self, buffer, pos, size):
        return tf.ensure_shape(buffer.gather(tf.range(pos - size, pos)), [size, self.batch])

    def put_rows(self, buffer, rows, pos):
        return buffer.scatter(tf.range(pos, pos + tf.shape(rows)[0]), rows)

    def stacked(self, buffer, logits):
        return buffer.stack(), logits.stack() if self.return_logits else tf.zeros([])


ENGINE_CLASSES = {"xla": XlaEngine, "stream": StreamEngine}
