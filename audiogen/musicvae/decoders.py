"""MusicVAE's decoders: the flat decoder, the conductor and the hierarchical decoder.

Recurrent state is explicit everywhere: the LSTMs are `LSTMStack`s stepped by `tf.while_loop`s
(no `stateful=True`, no Python loop over time at run time).

Two ways to run a decoder, sharing the same weights:

* `teacher_forced(x, z)` (also `call`): the fast path when the decoder is fed the truth at every
  step. Each LSTM layer runs over the whole sequence at once: its input projection is one big
  matmul, only the recurrent matmul is inside the loop, and in the hierarchical decoder the
  subsequences (each starting from its own state) are run side by side as one batch of
  `batch * n_subsequences` short sequences.
* `step_loop(z, ...)`: one `tf.while_loop` over the time steps with the whole stack stepped per
  step; needed whenever the input of step t depends on the output of step t-1 (scheduled sampling,
  free-running generation). Same logits as the fast path when fed the truth (tested). Training
  with scheduled sampling runs it forward only, to choose the inputs, then trains the fast path
  on those inputs (`MusicVAE._forward`).

`precision="mixed_bfloat16"` runs the LSTMs' matrix products (input projections and recurrent
products, forward and backward) in bfloat16 with float32 results, states and gates
(`audiogen.precision`); the dense layers stay float32.

Tokens are the 90-class melody encoding of `audiogen.midi.encoding`: 0 = no event, 1 = note-off,
2..89 = MIDI pitches 21..108.

Reference: Roberts et al., "A Hierarchical Latent Vector Model for Learning Long-Term Structure in
Music", ICML 2018.
"""
import keras
import tensorflow as tf

from audiogen.midi.encoding import NUM_CLASSES
from audiogen.musicvae.lstm_stack import LSTMStack
from audiogen.precision import dot, matmul


class _AutoregressiveDecoder(keras.layers.Layer):
    """Shared core: an autoregressive LSTM stack over `n_segments` equal segments of the sequence.

    Segment j starts from a state given by dense + tanh of its conditioning vector `cond_j`, and
    `cond_j` is concatenated to every input of the segment; the previous token is carried across
    segment boundaries (a zero embedding before the first step). The flat decoder is the case of
    one segment conditioned on z; the hierarchical decoder conditions segment j on the conductor's
    j-th embedding.

    Args:
        seq_len: int, steps per sequence; must be divisible by `n_segments` (ValueError).
        embed_size: int, token embedding size.
        hidden_size: int, LSTM units per layer.
        n_layers: int, stacked LSTM layers.
        n_segments: int, segments of the sequence, each with its own conditioning vector.
        cond_size: int, size of a conditioning vector.
        vocab_size: int, number of token classes (90).
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).
        input_dropout: float in [0, 1), the share of previous-token inputs replaced by the zero
            embedding in training (`teacher_forced(..., seed=...)`): the decoder cannot then
            predict from the previous tokens alone and must use its conditioning (Bowman et al.,
            "Generating Sentences from a Continuous Space", 2016, word dropout).

    Subclasses give `conditioning(z)`: `[batch, z_size]` -> `[batch, n_segments, cond_size]`.

    Reference: Roberts et al., ICML 2018, section 3.
    """

    def __init__(self, seq_len, embed_size, hidden_size, n_layers, n_segments, cond_size,
                 vocab_size=NUM_CLASSES, precision="float32", input_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= input_dropout < 1:
            raise ValueError(f"input_dropout must be in [0, 1), got {input_dropout}")
        if seq_len % n_segments:
            raise ValueError(
                f"seq_len ({seq_len}) must be divisible by n_subsequences ({n_segments}) for "
                f"the hierarchical decoder: each subsequence must have the same length "
                f"(e.g. choose n_subsequences among the divisors of {seq_len})")
        self.seq_len = seq_len
        self.embed_size = embed_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.vocab_size = vocab_size
        self.precision = precision
        self.input_dropout = float(input_dropout)
        self._n_segments = n_segments
        self._cond_size = cond_size
        # === Layers ===
        self.embedding = keras.layers.Embedding(vocab_size, embed_size, name="embedding")
        self.lstm = LSTMStack(hidden_size, n_layers, precision, name="lstm")
        self.initial_state = keras.layers.Dense(self.lstm.state_size, activation="tanh",
                                                name="initial_state")
        self.output_dense = keras.layers.Dense(vocab_size, name="logits")

    def _build_core(self):
        self.embedding.build(None)
        self.lstm.build((None, self.embed_size + self._cond_size))
        self.initial_state.build((None, self._cond_size))
        self.output_dense.build((None, self.hidden_size))

    def conditioning(self, z):
        """`z` `[batch, z_size]` -> per-segment conditioning `[batch, n_segments, cond_size]`."""
        raise NotImplementedError

    def teacher_forced(self, x, z, seed=None):
        """Logits `[batch, seq_len, vocab]` when the input at step t is the true token t-1.

        With `seed` (int `[2]`, training) and `input_dropout` > 0, that share of the inputs,
        drawn per example and step, is the zero embedding instead."""
        x = tf.cast(x, tf.int32)
        batch = tf.shape(x)[0]
        segs, seg_len = self._n_segments, self.seq_len // self._n_segments
        cond = self.conditioning(z)                                      # [B, S, D]
        emb = self.embedding(x)                                          # [B, T, E]
        if seed is not None and self.input_dropout > 0:
            keep = tf.random.stateless_uniform(tf.shape(x), seed=seed) >= self.input_dropout
            emb = emb * tf.cast(keep, emb.dtype)[..., None]
        prev = tf.concat([tf.zeros_like(emb[:, :1]), emb[:, :-1]], axis=1)
        # Segments side by side: [B*S, L, E], each with its constant input cond_j (the input of
        # step t is [prev_t, cond_j], as in `step_loop`).
        prev = tf.transpose(tf.reshape(prev, [batch * segs, seg_len, self.embed_size]),
                            [1, 0, 2])                                   # [L, B*S, E]
        cond = tf.reshape(cond, [batch * segs, self._cond_size])
        init = self.lstm.state_from_flat(self.initial_state(cond))
        out, _ = self.lstm.sequence_time_major(prev, init, constant=cond)  # [L, B*S, H]
        logits = self.output_dense(tf.transpose(out, [1, 0, 2]))         # [B*S, L, V]
        return tf.reshape(logits, [batch, self.seq_len, self.vocab_size])

    def call(self, x, z):
        return self.teacher_forced(x, z)

    def step_loop(self, z, targets=None, sample_probability=None, temperature=1.0, seed=(0, 0)):
        """Step-by-step decoding in one `tf.while_loop`.

        At each step a token is drawn from `softmax(logits / temperature)` (argmax where the
        example's temperature is <= 0). Without `targets` that token is the next input
        (free-running generation). With `targets`, the next input is the drawn token with
        probability `sample_probability` per example and step, else the true token (scheduled
        sampling; probability None or 0 = teacher forcing).

        Args:
            z: `[batch, z_size]` latent codes.
            targets: optional int `[batch, seq_len]`.
            sample_probability: scalar, see above.
            temperature: scalar or `[batch]`.
            seed: int `[2]`, the seed of the stateless random ops.

        Returns:
            `(logits, tokens)`: `[batch, seq_len, vocab]` float and `[batch, seq_len]` int32, the
            tokens fed as the next inputs (the drawn ones when free running).
        """
        z = tf.convert_to_tensor(z, tf.float32)
        batch = tf.shape(z)[0]
        seg_len = self.seq_len // self._n_segments
        cond = self.conditioning(z)                                      # [B, S, D]
        init_flat = self.initial_state(cond)                             # [B, S, state]
        params = self.lstm.step_params(first_input_projected=True)
        cond_proj, token_proj = self._bottom_input_projections(cond)
        next_token = _NextToken(batch, temperature, seed, targets, sample_probability)

        def body(t, prev_proj, states, logits_ta, tokens_ta):
            segment = t // seg_len
            states = self._segment_start_states(t, seg_len, init_flat, states)
            proj = prev_proj + tf.gather(cond_proj, segment, axis=1)
            out, states = self.lstm.step_with_params(params, None, states,
                                                     first_input_projection=proj)
            logits = self.output_dense(out)
            token = next_token(t, logits)
            return (t + 1, tf.gather(token_proj, token), states, logits_ta.write(t, logits),
                    tokens_ta.write(t, token))

        # With one segment the state starts from it; otherwise it is replaced at t = 0.
        init_states = (self.lstm.state_from_flat(init_flat[:, 0]) if self._n_segments == 1
                       else self.lstm.zero_state(batch))
        _, _, _, logits_ta, tokens_ta = tf.while_loop(
            lambda t, *_: t < self.seq_len, body,
            (tf.constant(0), tf.zeros([batch, 4 * self.hidden_size]), init_states,
             tf.TensorArray(tf.float32, size=self.seq_len),
             tf.TensorArray(tf.int32, size=self.seq_len)),
            maximum_iterations=self.seq_len)
        logits = tf.transpose(logits_ta.stack(), [1, 0, 2])
        tokens = tf.transpose(tokens_ta.stack(), [1, 0])
        return logits, tokens

    def _bottom_input_projections(self, cond):
        """The bottom layer's input at a step is [embedding of the previous token, cond_j]: its
        projection is a row of `token_proj` `[vocab, 4 units]` plus `cond_proj[:, j]`
        (`cond_proj` `[batch, n_segments, 4 units]`), both computed once before the loop."""
        kernel, dtype = tf.convert_to_tensor(self.lstm.cells[0].kernel), self.lstm.matmul_dtype
        cond_proj = dot(cond, kernel[self.embed_size:], dtype)
        token_proj = matmul(self.embedding.embeddings, kernel[:self.embed_size], dtype)
        return cond_proj, token_proj

    def _segment_start_states(self, t, seg_len, init_flat, states):
        """`states` at step `t`, replaced by the segment's initial state where a segment starts
        (with one segment the loop starts from it and nothing is replaced)."""
        if self._n_segments == 1:
            return states
        fresh = self.lstm.state_from_flat(tf.gather(init_flat, t // seg_len, axis=1))
        starts = tf.equal(t % seg_len, 0)
        return [(tf.where(starts, h0, h), tf.where(starts, c0, c))
                for (h0, c0), (h, c) in zip(fresh, states)]


class _NextToken:
    """The token `step_loop` feeds at the next step, by the rule of its docstring (same
    arguments); the draws are stateless, seeded by `seed` folded with the step."""

    def __init__(self, batch, temperature, seed, targets=None, sample_probability=None):
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), [batch])
        self.batch = batch
        self.greedy = temperature <= 0.0
        self.scale = tf.where(self.greedy, 1.0, temperature)[:, None]
        self.seed = tf.cast(seed, tf.int32)  # XLA's stateless multinomial takes int32 seeds
        self.targets = None
        if targets is not None:
            self.targets = tf.cast(targets, tf.int32)
            self.sample_probability = tf.cast(
                0.0 if sample_probability is None else sample_probability, tf.float32)

    def __call__(self, t, logits):
        """The int32 `[batch]` tokens of step `t` from its `[batch, vocab]` logits."""
        step_seed = tf.random.experimental.stateless_fold_in(self.seed, t)
        seeds = tf.random.experimental.stateless_split(step_seed, 2)
        drawn = tf.cast(tf.random.stateless_categorical(
            logits / self.scale, 1, seed=seeds[0])[:, 0], tf.int32)
        drawn = tf.where(self.greedy, tf.argmax(logits, axis=-1, output_type=tf.int32), drawn)
        if self.targets is None:
            return drawn
        use_drawn = tf.random.stateless_uniform([self.batch], seed=seeds[1]) < \
            self.sample_probability
        return tf.where(use_drawn, drawn, self.targets[:, t])


class FlatDecoder(_AutoregressiveDecoder):
    """Flat autoregressive LSTM decoder p(x|z).

    The LSTM stack starts from dense + tanh of z; its input at step t is [embedding of the token
    at t-1 (a zero vector at t = 0), z]; a dense layer gives the 90 logits.

    Args:
        seq_len: int, steps per sequence.
        z_size: int, latent size.
        embed_size: int, token embedding size.
        hidden_size: int, LSTM units per layer.
        n_layers: int, stacked LSTM layers.
        vocab_size: int, number of token classes (90).
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).
        input_dropout: float in [0, 1), see `_AutoregressiveDecoder`.

    Call: `(x, z)` with `x` int `[batch, seq_len]`, `z` `[batch, z_size]` -> teacher-forced logits
    `[batch, seq_len, vocab_size]`. See `step_loop` for sampling.

    Reference: Roberts et al., ICML 2018, section 3.
    """

    def __init__(self, seq_len, z_size, embed_size, hidden_size, n_layers,
                 vocab_size=NUM_CLASSES, precision="float32", input_dropout=0.0, **kwargs):
        super().__init__(seq_len, embed_size, hidden_size, n_layers, n_segments=1,
                         cond_size=z_size, vocab_size=vocab_size, precision=precision,
                         input_dropout=input_dropout, **kwargs)
        self.z_size = z_size

    def build(self, input_shape=None):
        self._build_core()

    def conditioning(self, z):
        return z[:, None, :]

    def get_config(self):
        config = super().get_config()
        config.update({"seq_len": self.seq_len, "z_size": self.z_size,
                       "embed_size": self.embed_size, "hidden_size": self.hidden_size,
                       "n_layers": self.n_layers, "vocab_size": self.vocab_size,
                       "precision": self.precision, "input_dropout": self.input_dropout})
        return config


class Conductor(keras.layers.Layer):
    """The conductor: an LSTM stack run for `n_subsequences` steps from z.

    Its state starts from dense + tanh of z, its inputs are zeros; each output goes through a dense
    layer to the subsequence embedding `c_j`.

    Args:
        n_subsequences: int, conductor steps (= subsequences of the melody).
        z_size: int, latent size.
        hidden_size: int, LSTM units per layer.
        n_layers: int, stacked LSTM layers.
        c_size: int, size of each embedding `c_j`.
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).

    Call: `z` `[batch, z_size]` -> `[batch, n_subsequences, c_size]`.

    Reference: Roberts et al., ICML 2018, section 3.2.
    """

    def __init__(self, n_subsequences, z_size, hidden_size, n_layers, c_size,
                 precision="float32", **kwargs):
        super().__init__(**kwargs)
        self.n_subsequences = n_subsequences
        self.z_size = z_size
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.c_size = c_size
        self.precision = precision
        # === Layers ===
        self.lstm = LSTMStack(hidden_size, n_layers, precision, name="lstm")
        self.initial_state = keras.layers.Dense(self.lstm.state_size, activation="tanh",
                                                name="initial_state")
        self.output_dense = keras.layers.Dense(c_size, name="c")

    def build(self, input_shape=None):
        self.lstm.build((None, 1))
        self.initial_state.build((None, self.z_size))
        self.output_dense.build((None, self.hidden_size))

    def call(self, z):
        batch = tf.shape(z)[0]
        init = self.lstm.state_from_flat(self.initial_state(z))
        out, _ = self.lstm.sequence(tf.zeros([batch, self.n_subsequences, 1]), init)
        return self.output_dense(out)

    def get_config(self):
        config = super().get_config()
        config.update({"n_subsequences": self.n_subsequences, "z_size": self.z_size,
                       "hidden_size": self.hidden_size, "n_layers": self.n_layers,
                       "c_size": self.c_size, "precision": self.precision})
        return config


class HierarchicalDecoder(_AutoregressiveDecoder):
    """Hierarchical decoder: a conductor over subsequences and a shared bottom LSTM decoder.

    The conductor turns z into `n_subsequences` embeddings `c_j`. Subsequence j of the melody is
    decoded by the shared bottom decoder started from dense + tanh of `c_j`, with `c_j`
    concatenated to each of its inputs; it stays autoregressive across subsequence boundaries
    (the last token of subsequence j-1 is the first input of subsequence j).

    Args:
        seq_len: int, steps per sequence; must be divisible by `n_subsequences` (ValueError).
        z_size: int, latent size.
        embed_size, hidden_size, n_layers: ints, the bottom decoder.
        n_subsequences: int, conductor steps.
        c_size: int, conductor embedding size.
        conductor_hidden_size, conductor_n_layers: ints, the conductor's LSTM stack.
        vocab_size: int, number of token classes (90).
        precision: `"float32"` or `"mixed_bfloat16"` (the LSTM products in bfloat16).
        input_dropout: float in [0, 1), see `_AutoregressiveDecoder`.

    Call: `(x, z)` -> teacher-forced logits `[batch, seq_len, vocab_size]`.

    Reference: Roberts et al., ICML 2018, section 3.2.
    """

    def __init__(self, seq_len, z_size, embed_size, hidden_size, n_layers, n_subsequences,
                 c_size, conductor_hidden_size, conductor_n_layers, vocab_size=NUM_CLASSES,
                 precision="float32", input_dropout=0.0, **kwargs):
        super().__init__(seq_len, embed_size, hidden_size, n_layers,
                         n_segments=n_subsequences, cond_size=c_size, vocab_size=vocab_size,
                         precision=precision, input_dropout=input_dropout, **kwargs)
        self.z_size = z_size
        self.n_subsequences = n_subsequences
        self.c_size = c_size
        self.conductor_hidden_size = conductor_hidden_size
        self.conductor_n_layers = conductor_n_layers
        self.conductor = Conductor(n_subsequences, z_size, conductor_hidden_size,
                                   conductor_n_layers, c_size, precision, name="conductor")

    def build(self, input_shape=None):
        self.conductor.build((None, self.z_size))
        self._build_core()

    def conditioning(self, z):
        return self.conductor(z)

    def get_config(self):
        config = super().get_config()
        config.update({"seq_len": self.seq_len, "z_size": self.z_size,
                       "embed_size": self.embed_size, "hidden_size": self.hidden_size,
                       "n_layers": self.n_layers, "n_subsequences": self.n_subsequences,
                       "c_size": self.c_size,
                       "conductor_hidden_size": self.conductor_hidden_size,
                       "conductor_n_layers": self.conductor_n_layers,
                       "vocab_size": self.vocab_size, "precision": self.precision,
                       "input_dropout": self.input_dropout})
        return config
