"""The SampleRNN model: frame tiers + sample-level MLP, trained with truncated BPTT.

Training data are windows `(x, reset)` (see `SampleRNN`); the recurrent state is carried from
window to window in variables that are deliberately *not* part of the model's weights, so
checkpoints do not depend on the training batch size.
"""
import keras
import tensorflow as tf

from audiogen.audio.quantize import num_levels
from audiogen.config import DEFAULTS
from audiogen.loss_scaling import DynamicLossScale, apply_gradients, scaled
from audiogen.precision import builds_float32_layers, uses_loss_scaling
from audiogen.replicas import CompiledPerReplica
from audiogen.samplernn.frame_tier import FrameTier, levels_to_inputs
from audiogen.samplernn.sample_mlp import SampleMLP
from audiogen.losses import nats_to_bits


_DEFAULTS = DEFAULTS["samplernn"]
# The constructor's arguments, which a resolved config holds under the same names.
CONFIG_KEYS = ("frame_sizes", "dim", "rnn_type", "num_rnn_layers", "q_type", "q_levels",
               "emb_size", "skip_conn", "seq_len", "max_grad_norm", "precision")


class _Untracked:
    """A plain holder: what it keeps is invisible to Keras weights and to tf.train.Checkpoint."""

    def __init__(self):
        self.carry = {}       # "train" / "test" -> list of tf.Variable [None, dim]
        self.capacity = {}    # "train" / "test" -> rows currently held by those variables
        self.generate_fns = {}


class SampleRNN(keras.Model):
    """SampleRNN: a hierarchy of frame-level RNN tiers over a sample-level MLP.

    The top tier reads frames of `frame_sizes[-1]` samples; each tier's output is linearly
    upsampled into conditioning vectors for the tier below (one per lower-tier frame); the bottom
    tier's output gives one vector per sample, which the sample-level MLP combines with the
    embeddings of the previous `frame_sizes[0]` samples to predict a softmax over `q_levels`.
    RNN state is explicit; each tier has learned initial states used after every reset and for
    generation. Frame tiers read levels scaled linearly to [-1, 1] (for mu-law: in the companded
    domain); the MLP embeds levels.

    Args:
        frame_sizes: list of int, ascending, each a multiple of the previous (one tier each).
        dim: int, width of RNNs, projections and MLP.
        rnn_type: `"gru"` or `"lstm"`.
        num_rnn_layers: int, RNN layers per tier.
        q_type: `"mu-law"` (forces 256 levels) or `"linear"`.
        q_levels: int, quantization levels.
        emb_size: int, sample embedding width.
        skip_conn: bool, skip connections in each tier (tier input -> every RNN layer, every RNN
            layer -> tier output, which is their sum).
        seq_len: int, targets per training window (a multiple of `frame_sizes[-1]`).
        max_grad_norm: float or None, clip gradients by global norm (None: no clipping).
        precision: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`: matrix products in
            that type with float32 variables, states and loss (`audiogen.precision`; bfloat16 for
            CPUs with AMX, float16, with loss scaling, for GPUs).

    Call: `model(x, states=None) -> (logits, new_states)`; `x` int32
    `[batch, length + frame_sizes[-1]]` (any length that is a multiple of the top frame size),
    `logits` `[batch, length, q_levels]` for targets `x[:, frame_sizes[-1]:]`, `states` a flat
    list of `[batch, dim]` tensors (tiers top to bottom, layers, then `h` (and `c` for LSTM));
    `None` means the learned initial states.

    Training data: `(x, reset)` with `x` `[batch, seq_len + frame_sizes[-1]]` and `reset` bool
    `[batch]` (or a scalar for every row), True where a row starts a new audio piece. Each step
    starts each row from `where(reset, learned initial state, carried state)`, applies one
    window's gradients and carries `stop_gradient(new state)`. The carried state (one set for
    training, one for evaluation) lives in untracked variables sized for the batch (from the
    dataset's static batch size, at trace time, or by `build_for_batch`), one copy per replica
    under a `tf.distribute` strategy; `save_weights` and `tf.train.Checkpoint` never see them,
    so checkpoints restore into a model built for any batch size. `replica_train_step` /
    `replica_test_step` are the steps as each replica runs them (`train_step` / `test_step`
    add the metrics).

    Reference: Mehri et al., "SampleRNN: An Unconditional End-to-End Neural Audio Generation
    Model", ICLR 2017. Differences: no weight normalization; gradient clipping by global norm.
    """

    @builds_float32_layers
    def __init__(self, frame_sizes=_DEFAULTS["frame_sizes"], dim=_DEFAULTS["dim"],
                 rnn_type=_DEFAULTS["rnn_type"], num_rnn_layers=_DEFAULTS["num_rnn_layers"],
                 q_type=_DEFAULTS["q_type"], q_levels=_DEFAULTS["q_levels"],
                 emb_size=_DEFAULTS["emb_size"], skip_conn=_DEFAULTS["skip_conn"],
                 seq_len=_DEFAULTS["seq_len"], max_grad_norm=_DEFAULTS["max_grad_norm"],
                 precision=_DEFAULTS["precision"], **kwargs):
        super().__init__(**kwargs)
        frame_sizes = [int(f) for f in frame_sizes]
        if not frame_sizes or any(b <= a or b % a for a, b in zip(frame_sizes, frame_sizes[1:])):
            raise ValueError(f"frame_sizes must be ascending, each a multiple of the previous; "
                             f"got {frame_sizes}")
        if seq_len % frame_sizes[-1]:
            raise ValueError(f"seq_len ({seq_len}) must be a multiple of the top frame size "
                             f"({frame_sizes[-1]})")
        # === Config ===
        self.frame_sizes = frame_sizes
        self.dim = int(dim)
        self.rnn_type = rnn_type
        self.num_rnn_layers = int(num_rnn_layers)
        self.q_type = q_type
        self.q_levels = num_levels(q_type, q_levels)
        self.emb_size = int(emb_size)
        self.skip_conn = bool(skip_conn)
        self.seq_len = int(seq_len)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.precision = precision
        # === Layers ===
        sizes = list(reversed(frame_sizes))               # top to bottom
        below = sizes[1:] + [1]                           # bottom tier: one vector per sample
        # Sublayers are plain attributes (not a list) so tf.train.Checkpoint sees them too.
        for k, (f, b) in enumerate(zip(sizes, below)):
            setattr(self, f"tier_{k}", FrameTier(f, f // b, self.dim, rnn_type,
                                                 self.num_rnn_layers, self.skip_conn,
                                                 precision, name=f"frame_tier_{f}"))
        self.mlp = SampleMLP(frame_sizes[0], self.dim, self.q_levels, self.emb_size, precision,
                             name="sample_mlp")
        # === Metrics ===
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.bits_tracker = keras.metrics.Mean(name="bits_per_sample")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self._untracked = _Untracked()
        self._gradient_pass = CompiledPerReplica(self._gradients, lambda: bool(self.jit_compile))
        # A plain object: its variables are in no checkpoint (see `DynamicLossScale`).
        self.loss_scale = DynamicLossScale() if uses_loss_scaling(precision) else None

    @classmethod
    def from_run_config(cls, config):
        """A model from a resolved audiogen SampleRNN config (`audiogen.config.load_config`)."""
        return cls(**{k: config[k] for k in CONFIG_KEYS})

    # --- structure ------------------------------------------------------------------------------

    @property
    def tiers(self):
        """The frame tiers, top (largest frame) to bottom."""
        return [getattr(self, f"tier_{k}") for k in range(len(self.frame_sizes))]

    @property
    def top_frame(self):
        return self.frame_sizes[-1]

    @property
    def state_sizes(self):
        """Number of state tensors per tier (top to bottom)."""
        return [t.rnn.num_states for t in self.tiers]

    def _split_states(self, states):
        out, i = [], 0
        for n in self.state_sizes:
            out.append(list(states[i:i + n]))
            i += n
        return out

    def build(self, input_shape=None):
        if self.built:
            return
        for tier in self.tiers:
            tier.build()
        self.mlp.build()
        self.built = True

    def build_for_batch(self, batch_size=1):
        """Create every variable without data, and size the carried state for `batch_size`.

        Call before restoring a `tf.train.Checkpoint` (with `optimizer.build(...)` too).
        """
        self.build()
        for kind in ("train", "test"):
            self._carried_state(kind, int(batch_size))
        return self

    def initial_states(self, batch_size):
        """The learned initial states, a flat list of `[batch_size, dim]` tensors."""
        return [s for tier in self.tiers for s in tier.rnn.initial_states(batch_size)]

    # --- forward --------------------------------------------------------------------------------

    def frame_tiers(self, x, states):
        """Run the frame tiers over `x` `[batch, length + top]` -> (conditioning, new states).

        The conditioning is `[batch, length, dim]`, one vector per target sample.
        """
        top, length = self.top_frame, x.shape[1] - self.top_frame
        if length % top:
            raise ValueError(f"input length {x.shape[1]} must be a multiple of the top frame "
                             f"size {top} plus {top}")
        inputs = levels_to_inputs(x, self.q_levels)
        batch = tf.shape(x)[0]
        cond, new_states = None, []
        for tier, tier_states in zip(self.tiers, self._split_states(states)):
            f = tier.frame_size
            frames = tf.reshape(inputs[:, top - f:top - f + length], [batch, length // f, f])
            cond, st = tier(frames, cond, tier_states)
            new_states += st
        return cond, new_states

    def call(self, x, states=None, training=None):
        x = tf.convert_to_tensor(x)
        if x.dtype != tf.int32:
            x = tf.cast(x, tf.int32)
        if states is None:
            states = self.initial_states(tf.shape(x)[0])
        cond, new_states = self.frame_tiers(x, states)
        top, f0 = self.top_frame, self.frame_sizes[0]
        logits = self.mlp(x[:, top - f0:-1], cond)
        return logits, new_states

    # --- training -------------------------------------------------------------------------------

    @property
    def metrics(self):
        return [self.loss_tracker, self.bits_tracker, self.accuracy_tracker]

    def _carried_state(self, kind, batch_size):
        """The carried-state variables for `kind` ("train"/"test"), holding >= batch_size rows.

        They are created eagerly and grown (eagerly, even while a step is being traced) when a
        larger static batch is seen; a compiled step reads and writes their first rows. Under a
        `tf.distribute` strategy each replica has its own copy (for its own rows): build the
        model in the strategy's scope with `build_for_batch(per-replica batch)`.
        """
        variables = self._untracked.carry.get(kind)
        capacity, rows = self._untracked.capacity.get(kind, 0), batch_size or 0
        if variables is not None and rows <= capacity:
            return variables
        with tf.init_scope():
            if variables is None:
                variables = [
                    tf.Variable(tf.zeros([rows, self.dim]), shape=tf.TensorShape([None, self.dim]),
                                trainable=False, name=f"carried_{kind}_{i}",
                                synchronization=tf.VariableSynchronization.ON_READ,
                                aggregation=tf.VariableAggregation.NONE)
                    for i in range(sum(self.state_sizes))]
                self._untracked.carry[kind] = variables
            elif tf.distribute.has_strategy():
                raise ValueError(f"SampleRNN: a batch of {rows} rows per replica, but the model "
                                 f"was built for {capacity}; call build_for_batch(per-replica "
                                 f"batch) in the strategy's scope")
            else:
                for v in variables:
                    v.assign(tf.zeros([rows, self.dim]))
            self._untracked.capacity[kind] = rows
        return variables

    def _carried(self, kind, x):
        """(The carried states' first `batch` rows, their variables) for windows `x`."""
        variables = self._carried_state(kind, x.shape[0])
        if not self._untracked.capacity[kind] and x.shape[0] is None:
            raise ValueError("SampleRNN: the batch size is unknown while tracing a step; call "
                             "model.build_for_batch(batch_size) before fit/evaluate")
        batch = tf.shape(x)[0]
        return [v[:batch] for v in variables], variables

    def _start_states(self, x, reset, carried):
        """Each row's state at the start of a window: the learned initial state where `reset`,
        its carried state elsewhere."""
        initial = self.initial_states(tf.shape(x)[0])
        return [tf.where(reset[:, None], i, c) for i, c in zip(initial, carried)]

    def _store_states(self, variables, states):
        for v, s in zip(variables, states):
            v[:tf.shape(s)[0]].assign(tf.stop_gradient(s))

    def _window_loss(self, x, logits):
        targets = x[:, self.top_frame:]
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets), tf.float32)
        return loss, tf.reduce_mean(hits)

    def record_metrics(self, values):
        """Update the metrics with one step's `{"loss", "accuracy"}`; returns the logs."""
        self.loss_tracker.update_state(values["loss"])
        self.bits_tracker.update_state(nats_to_bits(values["loss"]))
        self.accuracy_tracker.update_state(values["accuracy"])
        return {m.name: m.result() for m in self.metrics}

    @staticmethod
    def _unpack(data):
        """`(x, reset)` with `reset` `[batch]` (a scalar reset applies to every row)."""
        x, reset = data[0], data[1]
        x = tf.convert_to_tensor(x)
        if x.dtype != tf.int32:
            x = tf.cast(x, tf.int32)
        reset = tf.reshape(tf.cast(reset, tf.bool), [-1])
        return x, tf.broadcast_to(reset, tf.shape(x)[:1])

    def _gradients(self, x, reset, carried):
        """One window's forward and backward pass: `(grads, new states, loss, accuracy)`."""
        with tf.GradientTape() as tape:
            states = self._start_states(x, reset, carried)
            logits, new_states = self(x, states, training=True)
            loss, accuracy = self._window_loss(x, logits)
            target = scaled(loss, self.loss_scale)
        return tape.gradient(target, self.trainable_variables), new_states, loss, accuracy

    def replica_train_step(self, data):
        """One training window on this replica's rows: returns `({"loss", "accuracy"}, rows)`,
        this replica's own values (the gradients are averaged over the replicas)."""
        x, reset = self._unpack(data)
        carried, variables = self._carried("train", x)
        grads, new_states, loss, accuracy = self._gradient_pass(x, reset, carried)
        apply_gradients(self.optimizer, grads, self.trainable_variables, self.max_grad_norm,
                        self.loss_scale)
        self._store_states(variables, new_states)
        return {"loss": loss, "accuracy": accuracy}, tf.shape(x)[0]

    def replica_test_step(self, data):
        """One validation window on this replica's rows (see `replica_train_step`)."""
        x, reset = self._unpack(data)
        carried, variables = self._carried("test", x)
        logits, new_states = self(x, self._start_states(x, reset, carried), training=False)
        loss, accuracy = self._window_loss(x, logits)
        self._store_states(variables, new_states)
        return {"loss": loss, "accuracy": accuracy}, tf.shape(x)[0]

    def train_step(self, data):
        return self.record_metrics(self.replica_train_step(data)[0])

    def test_step(self, data):
        return self.record_metrics(self.replica_test_step(data)[0])

    def _presize(self, data, kind):
        spec = getattr(data, "element_spec", None)
        try:
            batch = spec[0].shape[0]
        except (TypeError, IndexError, AttributeError):
            batch = None
        if batch is not None:
            self.build()
            self._carried_state(kind, int(batch))

    def fit(self, x=None, *args, **kwargs):
        self.build()
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            # Built here, not lazily inside the first traced step (which would trace it twice).
            optimizer.build(self.trainable_variables)
        self._presize(x, "train")
        val = kwargs.get("validation_data")
        if val is not None:
            self._presize(val, "test")
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._presize(x, "test")
        return super().evaluate(x, *args, **kwargs)

    # --- config ---------------------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update({k: getattr(self, k) for k in CONFIG_KEYS})
        config["frame_sizes"] = list(self.frame_sizes)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
