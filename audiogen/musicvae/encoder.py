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

    With `n_subsequences = 1`, as in the paper: embedding(90, embed_size) -> `n_layers`
    bidirectional LSTM layers of `hidden_size` (each layer reads the concatenated outputs of both
    directions of the layer below) -> the final `h` of the top layer's forward and backward
    directions, concatenated `[batch, 2 hidden_size]` -> dense `mu` and dense + softplus `sigma`.

    With `n_subsequences = S > 1` the encoder is hierarchical, the mirror of the hierarchical
    decoder: the melody is cut into S equal subsequences, each read by that bidirectional stack on
    its own (`[batch * S, time / S]`, side by side), and a second bidirectional stack of the same
    size reads the S summaries `[batch, S, 2 hidden_size]`; its final `h` gives `mu` and `sigma`.
    Every step of the melody is then at most `time / S + S` recurrent steps from z instead of
    `time`, and the one long recurrent loop becomes two short ones.

    Args:
        z_size: int, latent size.
        embed_size: int, token embedding size.
        hidden_size: int, LSTM units per direction.
        n_layers: int, bidirectional layers (of each level when hierarchical).
        n_subsequences: int, see above; must divide the melody's length.
        vocab_size: int, number of token classes (90).
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).

    Call: `x` int `[batch, time]` -> `(mu, sigma)`, each `[batch, z_size]`.

    References: Roberts et al., ICML 2018, section 3.1; the hierarchical encoder is that of
    Magenta's multi-track MusicVAE models (`HierarchicalLstmEncoder`).
    """

    def __init__(self, z_size, embed_size, hidden_size, n_layers, n_subsequences=1,
                 vocab_size=NUM_CLASSES, precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.matmul_dtype = matmul_dtype(precision)
        self.z_size = z_size
        self.embed_size = embed_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_subsequences = n_subsequences
        self.vocab_size = vocab_size
        self.precision = precision
        # === Layers ===
        self.embedding = keras.layers.Embedding(vocab_size, embed_size, name="embedding")
        # One attribute per cell (not a list): tf.train.Checkpoint does not track Keras 3 lists.
        # The cells of the bottom level are named as those of the one-level encoder.
        self._levels = ("",) if n_subsequences == 1 else ("", "top_")
        for level in self._levels:
            for i in range(n_layers):
                for direction in ("forward", "backward"):
                    name = f"{level}{direction}_{i}"
                    setattr(self, name, keras.layers.LSTMCell(hidden_size, name=name))
        self.mu_dense = keras.layers.Dense(z_size, name="mu")
        self.sigma_dense = keras.layers.Dense(z_size, activation="softplus", name="sigma")

    def _cells(self, level=""):
        """The `(forward, backward)` cell pairs of a level, bottom layer first."""
        return [(getattr(self, f"{level}forward_{i}"), getattr(self, f"{level}backward_{i}"))
                for i in range(self.n_layers)]

    def build(self, input_shape=None):
        self.embedding.build(None)
        for level in self._levels:
            size = self.embed_size if level == "" else 2 * self.hidden_size
            for fw, bw in self._cells(level):
                fw.build((None, size))
                bw.build((None, size))
                size = 2 * self.hidden_size
        self.mu_dense.build((None, 2 * self.hidden_size))
        self.sigma_dense.build((None, 2 * self.hidden_size))

    def _bidirectional(self, h, level=""):
        """Time-major `h` `[time, batch, features]` -> the top layer's final forward and
        backward `h`, concatenated `[batch, 2 hidden_size]`."""
        zero = tf.zeros([tf.shape(h)[1], self.hidden_size])
        dtype = self.matmul_dtype
        for layer, (fw, bw) in enumerate(self._cells(level)):
            # The backward direction reads its input reversed in time; only its outputs, when a
            # next layer needs them, are reversed back.
            (out_fw, out_bw), ((h_fw, _), (h_bw, _)) = run_lstm(
                [fw, bw], [project(fw, h, dtype=dtype),
                           project(bw, tf.reverse(h, [0]), dtype=dtype)],
                [(zero, zero), (zero, zero)], dtype)
            if layer + 1 < self.n_layers:
                h = tf.concat([out_fw, tf.reverse(out_bw, [0])], axis=-1)  # [T, B, 2H]
        return tf.concat([h_fw, h_bw], axis=-1)

    def call(self, x):
        emb = self.embedding(tf.cast(x, tf.int32))                        # [B, T, E]
        segs = self.n_subsequences
        if segs == 1:
            last = self._bidirectional(tf.transpose(emb, [1, 0, 2]))
        else:
            batch = tf.shape(x)[0]
            emb = tf.reshape(emb, [batch * segs, -1, self.embed_size])    # [B*S, T/S, E]
            summaries = self._bidirectional(tf.transpose(emb, [1, 0, 2]))  # [B*S, 2H]
            summaries = tf.reshape(summaries, [batch, segs, 2 * self.hidden_size])
            last = self._bidirectional(tf.transpose(summaries, [1, 0, 2]), level="top_")
        return self.mu_dense(last), self.sigma_dense(last)

    def get_config(self):
        config = super().get_config()
        config.update({"z_size": self.z_size, "embed_size": self.embed_size,
                       "hidden_size": self.hidden_size, "n_layers": self.n_layers,
                       "n_subsequences": self.n_subsequences, "vocab_size": self.vocab_size,
                       "precision": self.precision})
        return config
