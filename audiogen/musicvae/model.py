"""MusicVAE: a variational autoencoder of melodies with a flat or hierarchical LSTM decoder."""
import copy

import keras
import tensorflow as tf

from audiogen.config import DEFAULTS
from audiogen.loss_scaling import DynamicLossScale, apply_gradients, scaled
from audiogen.losses import (
    LN2, free_bits_kl_penalty, kl_divergence_diag_normal, sequence_cross_entropy)
from audiogen.midi.encoding import NUM_CLASSES, STEPS_PER_BAR
from audiogen.musicvae.decoders import FlatDecoder, HierarchicalDecoder
from audiogen.musicvae.encoder import Encoder
from audiogen.precision import builds_float32_layers, uses_loss_scaling
from audiogen.replicas import CompiledPerReplica, replica_seed
from audiogen.schedules import SAMPLING_SCHEDULES, beta_schedule, sampling_probability

_DEFAULTS = DEFAULTS["musicvae"]
# The model code has no Python control flow on tensors (its loops are explicit `tf.while_loop`s),
# so AutoGraph's source transformation is skipped: it was about half of the tracing time of a
# train step (seconds per compile).
_no_autograph = tf.autograph.experimental.do_not_convert
_EVAL_SEED = (20180710, 0)  # fixed: validation losses are deterministic
TRAIN_METRICS = ("loss", "r_loss", "kl_bits", "beta", "sampling_prob", "accuracy")
EVAL_METRICS = TRAIN_METRICS + ("sampled_accuracy",)


def _params(given, key):
    """A full copy of a `*_params` / `*_settings` dict: defaults filled in, unknown keys refused."""
    defaults = _DEFAULTS[key]
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"MusicVAE: unknown key(s) {unknown} in {key} "
                         f"(valid keys: {sorted(defaults)})")
    return {**copy.deepcopy(defaults), **given}


@keras.saving.register_keras_serializable(package="audiogen")
class MusicVAE(keras.Model):
    """MusicVAE: bidirectional LSTM encoder, flat or hierarchical (conductor) LSTM decoder.

    Training minimises `r_loss + beta * mean_batch(max(KL - free_bits * ln 2, 0))` where `r_loss`
    is the softmax cross-entropy summed over time and averaged over the batch (nats), the KL of
    each example is summed over z and the free bits apply to that total (see
    `audiogen.losses.free_bits_kl_penalty`). `beta` follows `beta_schedule` and the
    scheduled-sampling probability follows `sampling_probability`, both at the optimizer's
    iteration count. With the constant schedule at rate 0 the decoder is teacher forced on the
    fast whole-sequence path; otherwise it runs the step loop, drawing the next input from the
    model's softmax with that probability per example and step.

    All variables exist once the constructor returns (it calls `build()`), so a
    `tf.train.Checkpoint(model=model)` can be restored straight away (build the optimizer too with
    `model.optimizer.build(model.trainable_variables)` after `compile`).

    Args:
        seq_len: int, steps per melody (`slice_bar * 16`).
        z_size: int, latent size.
        encoder_params: dict `{embed_size, hidden_size, n_layers, n_subsequences}`
            (`n_subsequences` > 1: the hierarchical encoder; it must divide `seq_len`).
        use_hier: bool, hierarchical (conductor) decoder instead of the flat one.
        decoder_params: dict `{embed_size, hidden_size, n_layers, input_dropout}` (the bottom
            decoder when hierarchical; `input_dropout`: the share of previous-token inputs
            dropped in training, see `audiogen.musicvae.decoders`).
        n_subsequences: int, conductor steps; must divide `seq_len` (hierarchical only).
        c_size: int, conductor embedding size (hierarchical only).
        conductor_params: dict `{hidden_size, n_layers}` (hierarchical only).
        free_bits: float, free KL allowance in bits, on the total KL of an example.
        beta_settings: dict `{start_beta, end_beta, duration}`.
        sampling_settings: dict `{schedule: "constant" | "inverse_sigmoid", rate}`.
        max_grad_norm: float or None, clip gradients to this global norm.
        vocab_size: int, token classes (90: no event, note-off, pitches 21..108).
        precision: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`: the LSTMs' matrix
            products in that type with float32 variables, states and loss (`audiogen.precision`;
            float16 trains with loss scaling; bfloat16 is faster on CPUs with AMX).

    Metrics (`fit` logs them, `val_`-prefixed for validation data): `loss`, `r_loss` (nats per
    melody), `kl_bits` (mean KL per melody in bits, before free bits), `beta`, `sampling_prob`,
    `accuracy` (next-token accuracy of the decoder's logits: teacher forced, except for the
    inputs scheduled sampling replaced during training); `test_step` adds `sampled_accuracy`:
    greedy free-running decoding from `z = mu` compared with the input, step by step. Validation
    losses use a fixed seed for the posterior sample and teacher forcing.

    Inputs: int32 `[batch, seq_len]` melodies. `call(x)` returns teacher-forced logits
    `[batch, seq_len, vocab_size]` decoded from `z = mu`.

    Reference: Roberts et al., "A Hierarchical Latent Vector Model for Learning Long-Term
    Structure in Music", ICML 2018.
    """

    @builds_float32_layers
    def __init__(self, seq_len=_DEFAULTS["slice_bar"] * STEPS_PER_BAR,
                 z_size=_DEFAULTS["z_size"], encoder_params=None, use_hier=False,
                 decoder_params=None, n_subsequences=_DEFAULTS["n_subsequences"],
                 c_size=_DEFAULTS["c_size"], conductor_params=None,
                 free_bits=_DEFAULTS["free_bits"], beta_settings=None, sampling_settings=None,
                 max_grad_norm=1.0, vocab_size=NUM_CLASSES, precision="float32", **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.seq_len = int(seq_len)
        self.z_size = int(z_size)
        self.encoder_params = _params(encoder_params, "encoder_params")
        self.use_hier = bool(use_hier)
        self.decoder_params = _params(decoder_params, "decoder_params")
        self.n_subsequences = int(n_subsequences)
        self.c_size = int(c_size)
        self.conductor_params = _params(conductor_params, "conductor_params")
        self.free_bits = float(free_bits)
        self.beta_settings = _params(beta_settings, "beta_settings")
        self.sampling_settings = _params(sampling_settings, "sampling_settings")
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.vocab_size = int(vocab_size)
        self.precision = precision
        if self.sampling_settings["schedule"] not in SAMPLING_SCHEDULES:
            raise ValueError(f"MusicVAE: sampling_settings.schedule must be one of "
                             f"{list(SAMPLING_SCHEDULES)}, got "
                             f"{self.sampling_settings['schedule']!r}")
        if self.seq_len % self.encoder_params["n_subsequences"]:
            raise ValueError(f"MusicVAE: encoder_params.n_subsequences "
                             f"({self.encoder_params['n_subsequences']}) must divide seq_len "
                             f"({self.seq_len})")
        # === Layers ===
        self.encoder = Encoder(self.z_size, vocab_size=self.vocab_size, precision=precision,
                               name="encoder", **self.encoder_params)
        dec = self.decoder_params
        if self.use_hier:
            self.decoder = HierarchicalDecoder(
                self.seq_len, self.z_size, dec["embed_size"], dec["hidden_size"],
                dec["n_layers"], self.n_subsequences, self.c_size,
                self.conductor_params["hidden_size"], self.conductor_params["n_layers"],
                vocab_size=self.vocab_size, precision=precision,
                input_dropout=dec["input_dropout"], name="hierarchical_decoder")
        else:
            self.decoder = FlatDecoder(self.seq_len, self.z_size, dec["embed_size"],
                                       dec["hidden_size"], dec["n_layers"],
                                       vocab_size=self.vocab_size, precision=precision,
                                       input_dropout=dec["input_dropout"], name="flat_decoder")
        # === Metrics ===
        self.trackers = {name: keras.metrics.Mean(name=name) for name in EVAL_METRICS}
        # A plain object: its variables are in no checkpoint (see `DynamicLossScale`).
        self.loss_scale = DynamicLossScale() if uses_loss_scaling(precision) else None
        self._gradient_pass = CompiledPerReplica(_no_autograph(self._gradients),
                                                 lambda: bool(self.jit_compile))
        self.build()

    @classmethod
    def from_run_config(cls, config):
        """A model from a resolved audiogen MusicVAE config (`audiogen.config.load_config`)."""
        keys = ("z_size", "encoder_params", "use_hier", "decoder_params", "n_subsequences",
                "c_size", "conductor_params", "free_bits", "beta_settings",
                "sampling_settings", "max_grad_norm", "precision")
        return cls(seq_len=config["slice_bar"] * STEPS_PER_BAR,
                   **{k: config[k] for k in keys if k in config})

    def build(self, input_shape=None):
        """Create every variable (called by the constructor; no data needed)."""
        self.encoder.build((None, self.seq_len))
        self.decoder.build((None, self.seq_len))

    @property
    def teacher_forcing_only(self):
        """True when the sampling schedule never feeds samples (the fast path is used)."""
        s = self.sampling_settings
        return s["schedule"] == "constant" and s["rate"] == 0

    @property
    def metrics(self):
        return list(self.trackers.values())

    # --- forward ----------------------------------------------------------------------------

    @_no_autograph
    def call(self, inputs, training=False):
        mu, _ = self.encoder(inputs)
        return self.decoder.teacher_forced(inputs, mu)

    def _forward(self, x, seed, sample_prob, training):
        mu, sigma = self.encoder(x, training=training)
        eps = tf.random.stateless_normal(
            tf.shape(mu), seed=tf.random.experimental.stateless_fold_in(seed, 1))
        z = mu + sigma * eps
        dropout_seed = tf.random.experimental.stateless_fold_in(seed, 3) if training else None
        if not training or self.teacher_forcing_only:
            logits = self.decoder.teacher_forced(x, z, dropout_seed)
        else:
            # Scheduled sampling: the step loop picks the input of every step (the truth or a
            # token drawn from the model). Those choices carry no gradient, so the logits (and
            # their gradient) are those of the decoder teacher forced on the chosen inputs:
            # the step loop runs forward only, the fast whole-sequence path does the training.
            _, fed = self.decoder.step_loop(
                tf.stop_gradient(z), targets=x, sample_probability=sample_prob,
                seed=tf.random.experimental.stateless_fold_in(seed, 2))
            logits = self.decoder.teacher_forced(tf.stop_gradient(fed), z, dropout_seed)
        r_loss = tf.reduce_mean(sequence_cross_entropy(x, logits))
        kl = kl_divergence_diag_normal(mu, sigma)
        kl_cost = tf.reduce_mean(free_bits_kl_penalty(kl, self.free_bits))
        accuracy = tf.reduce_mean(tf.cast(
            tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), x), tf.float32))
        return mu, r_loss, kl_cost, tf.reduce_mean(kl) / LN2, accuracy

    def _schedules(self):
        step = self.optimizer.iterations if self.optimizer is not None else tf.constant(0)
        b = self.beta_settings
        beta = beta_schedule(step, b["start_beta"], b["end_beta"], b["duration"])
        prob = sampling_probability(step, self.sampling_settings["schedule"],
                                    self.sampling_settings["rate"])
        return step, beta, prob

    @staticmethod
    def _unpack(data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return tf.cast(x, tf.int32)

    def record_metrics(self, values):
        """Update the metrics named in `values` (one step's); returns their logs."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in values}

    def _gradients(self, x, seed, sample_prob, beta):
        """One batch's forward and backward pass: `(grads, (loss, r_loss, kl_bits, accuracy))`."""
        with tf.GradientTape() as tape:
            _, r_loss, kl_cost, kl_bits, accuracy = self._forward(x, seed, sample_prob,
                                                                  training=True)
            loss = r_loss + beta * kl_cost
            target = scaled(loss, self.loss_scale)
        return tape.gradient(target, self.trainable_variables), (loss, r_loss, kl_bits, accuracy)

    @_no_autograph
    def replica_train_step(self, data):
        """One training batch on this replica's rows: returns `(values, rows)`, this replica's
        own metric values (the gradients are averaged over the replicas)."""
        x = self._unpack(data)
        step, beta, prob = self._schedules()
        seed = replica_seed(tf.stack([tf.cast(step, tf.int32), tf.constant(1)]))
        grads, (loss, r_loss, kl_bits, accuracy) = self._gradient_pass(x, seed, prob, beta)
        apply_gradients(self.optimizer, grads, self.trainable_variables, self.max_grad_norm,
                        self.loss_scale)
        values = (loss, r_loss, kl_bits, beta, prob, accuracy)
        return dict(zip(TRAIN_METRICS, values)), tf.shape(x)[0]

    @_no_autograph
    def replica_test_step(self, data):
        """Teacher-forced losses and accuracy, plus `sampled_accuracy`: greedy free-running
        decoding from `z = mu` compared with the input (see `replica_train_step`)."""
        x = self._unpack(data)
        _, beta, prob = self._schedules()
        mu, r_loss, kl_cost, kl_bits, accuracy = self._forward(
            x, tf.constant(_EVAL_SEED, tf.int32), prob, training=False)
        loss = r_loss + beta * kl_cost
        _, tokens = self.decoder.step_loop(mu, temperature=0.0)
        sampled_accuracy = tf.reduce_mean(tf.cast(tf.equal(tokens, x), tf.float32))
        values = (loss, r_loss, kl_bits, beta, prob, accuracy, sampled_accuracy)
        return dict(zip(EVAL_METRICS, values)), tf.shape(x)[0]

    def train_step(self, data):
        return self.record_metrics(self.replica_train_step(data)[0])

    def test_step(self, data):
        return self.record_metrics(self.replica_test_step(data)[0])

    # --- inference ----------------------------------------------------------------------------

    @tf.function(reduce_retracing=True, autograph=False)
    def _encode(self, x):
        return self.encoder(x)

    @tf.function(reduce_retracing=True, jit_compile=True, autograph=False)
    def _decode(self, z, temperature, seed):
        return self.decoder.step_loop(z, temperature=temperature, seed=seed)[1]

    def encode(self, x):
        """Posterior parameters: int `[batch, seq_len]` -> `(mu, sigma)`, each
        `[batch, z_size]`."""
        return self._encode(tf.cast(x, tf.int32))

    def decode(self, z, temperature=1.0, rng_seed=0):
        """Free-running sampling from `z` `[batch, z_size]` -> int32 `[batch, seq_len]`.

        `temperature`: scalar or `[batch]`; <= 0 means greedy (argmax). Deterministic for a given
        `rng_seed` (stateless random ops, one compiled loop).
        """
        z = tf.convert_to_tensor(z, tf.float32)
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), tf.shape(z)[:1])
        seed = tf.stack([tf.cast(rng_seed, tf.int32), tf.constant(0)])
        return self._decode(z, temperature, seed)

    # --- config -------------------------------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "seq_len": self.seq_len,
            "z_size": self.z_size,
            "encoder_params": dict(self.encoder_params),
            "use_hier": self.use_hier,
            "decoder_params": dict(self.decoder_params),
            "n_subsequences": self.n_subsequences,
            "c_size": self.c_size,
            "conductor_params": dict(self.conductor_params),
            "free_bits": self.free_bits,
            "beta_settings": dict(self.beta_settings),
            "sampling_settings": dict(self.sampling_settings),
            "max_grad_norm": self.max_grad_norm,
            "vocab_size": self.vocab_size,
            "precision": self.precision,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
