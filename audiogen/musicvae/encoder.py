"""MusicVAE's encoder: a bidirectional LSTM from a melody to the parameters of q(z|x).

Tokens are the 90-class melody encoding of `audiogen.midi.encoding`.
"""
import keras
import tensorflow as tf

from audiogen.midi.encoding import NUM_CLASSES
from audiogen.precision import matmul_dtype
from audiogen.rnn.lstm_sequence import project, run_lstm


class Encoder(keras.layers.Layer):
    """Bidirectional LSTM encoder to the parameters of a diagonal Gaussian posterior q(z|x).

    embedding(90, embed_size) -> `n_layers` bidirectional LSTM layers of `hidden_size` (each
    layer reads the concatenated outputs of both directions of the layer below) -> the final `h`
    of the top layer's forward and backward directions, concatenated -> dense `mu` and
    dense + softplus `sigma`.

    Args:
        z_size: int, latent size.
        embed_size: int, token embedding size.
        hidden_size: int, LSTM units per direction.
        n_layers: int, bidirectional layers.
        vocab_size: int, number of token classes (90).
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).

    Call: `x` int `[batch, time]` -> `(mu, sigma)`, each `[batch, z_size]`.

    Reference: Roberts et al., ICML 2018, section 3.1.
    """

    def __init__(self, z_size, embed_size, hidden_size, n_layers, vocab_size=NUM_CLASSES,
                 precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.matmul_dtype = matmul_dtype(precision)
        self.z_size = z_size
        self.embed_size = embed_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.vocab_size = vocab_size
        self.precision = precision
        # === Layers ===
        self.embedding = keras.layers.Embedding(vocab_size, embed_size, name="embedding")
        # One attribute per cell (not a list): tf.train.Checkpoint does not track Keras 3 lists.
        for i in range(n_layers):
            setattr(self, f"forward_{i}", keras.layers.LSTMCell(hidden_size, name=f"forward_{i}"))
            setattr(self, f"backward_{i}",
                    keras.layers.LSTMCell(hidden_size, name=f"backward_{i}"))
        self.mu_dense = keras.layers.Dense(z_size, name="mu")
        self.sigma_dense = keras.layers.Dense(z_size, activation="softplus", name="sigma")

    @property
    def forward_cells(self):
        return [getattr(self, f"forward_{i}") for i in range(self.n_layers)]

    @property
    def backward_cells(self):
        return [getattr(self, f"backward_{i}") for i in range(self.n_layers)]

    def build(self, input_shape=None):
        self.embedding.build(None)
        size = self.embed_size
        for fw, bw in zip(self.forward_cells, self.backward_cells):
            fw.build((None, size))
            bw.build((None, size))
            size = 2 * self.hidden_size
        self.mu_dense.build((None, 2 * self.hidden_size))
        self.sigma_dense.build((None, 2 * self.hidden_size))

    def call(self, x):
        h = tf.transpose(self.embedding(tf.cast(x, tf.int32)), [1, 0, 2])  # [T, B, E]
        zero = tf.zeros([tf.shape(x)[0], self.hidden_size])
        dtype = self.matmul_dtype
        for layer, (fw, bw) in enumerate(zip(self.forward_cells, self.backward_cells)):
            # The backward direction reads its input reversed in time; only its outputs, when a
            # next layer needs them, are reversed back.
            (out_fw, out_bw), ((h_fw, _), (h_bw, _)) = run_lstm(
                [fw, bw], [project(fw, h, dtype=dtype),
                           project(bw, tf.reverse(h, [0]), dtype=dtype)],
                [(zero, zero), (zero, zero)], dtype)
            if layer + 1 < self.n_layers:
                h = tf.concat([out_fw, tf.reverse(out_bw, [0])], axis=-1)  # [T, B, 2H]
        last = tf.concat([h_fw, h_bw], axis=-1)
        return self.mu_dense(last), self.sigma_dense(last)

    def get_config(self):
        config = super().get_config()
        config.update({"z_size": self.z_size, "embed_size": self.embed_size,
                       "hidden_size": self.hidden_size, "n_layers": self.n_layers,
                       "vocab_size": self.vocab_size, "precision": self.precision})
        return config
