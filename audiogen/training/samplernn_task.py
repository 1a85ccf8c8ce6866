"""SampleRNN in the shared training run: audio datasets, the model, its optimizer and callbacks.

Checkpoints are numbered by epoch; after each one, audio can be generated (`generate`) into
`<output_dir>/<id>/` and TensorBoard.
"""
import math
import os

import keras
import numpy as np
import tensorflow as tf

from audiogen.audio.io import save_wav
from audiogen.audio.prime import load_prime_levels, parse_offset
from audiogen.audio.quantize import dequantize
from audiogen.data.audio_dataset import make_audio_datasets
from audiogen.files import unused_paths
from audiogen.plots import audio_figure, figure_image
from audiogen.progress import ProgressLine
from audiogen.samplernn.model import SampleRNN
from audiogen.samplernn.sampler import generate
from audiogen.temperatures import cycle_temperatures
from audiogen.training.callbacks import decayed_learning_rate, normalize_checkpoint_policy
from audiogen.training.checkpoints import CheckpointStore, load_training_args, run_dir_of
from audiogen.training.optimizers import FusedAdam
from audiogen.training.options import OPTIMIZERS
from audiogen.training.run import Datasets, TrainingTask

PRIME_SECONDS = 1.0  # length of the priming excerpt used for generation during training


def make_optimizer(name, learning_rate, momentum):
    """The optimizer `name` (one of `OPTIMIZERS`)."""
    if name == "adam":
        return FusedAdam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    return keras.optimizers.RMSprop(learning_rate, momentum=momentum)


class SampleRNNTask(TrainingTask):
    """A SampleRNN training run: `config` a resolved SampleRNN config, `settings` a
    `SampleRNNTraining`, `run_id` the run's id (names the folder of generated audio)."""
    default_jit_compile = True

    def __init__(self, config, settings, run_id):
        self.config = config
        self.settings = settings
        self.run_id = run_id
        self.prime_levels = None
        self.temperatures = None
        self.info = None

    def check(self):
        s = self.settings
        if not s.data_dir:
            raise ValueError("--data_dir is required to train a SampleRNN")
        if s.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {s.optimizer!r}")
        self.policy = normalize_checkpoint_policy(s.checkpoint_policy)
        self.temperatures = cycle_temperatures(s.temperature, max(s.max_generate_per_epoch, 1))
        if s.generate and s.prime:
            offset = parse_offset(s.prime_offset, s.sample_rate)
            self.prime_levels = load_prime_levels(
                s.prime, offset, s.sample_rate, int(PRIME_SECONDS * s.sample_rate),
                self.config["q_type"], self.config["q_levels"])

    def compared_args(self):
        return {"sample_rate": self.settings.sample_rate}

    def global_batch(self):
        return self.settings.batch_size

    def datasets(self, shard=None):
        s, c = self.settings, self.config
        data = make_audio_datasets(
            s.data_dir, sample_rate=s.sample_rate, batch_size=s.batch_size, seq_len=c["seq_len"],
            top_frame_size=c["frame_sizes"][-1], q_type=c["q_type"], q_levels=c["q_levels"],
            piece_dur=c["piece_dur"], num_val_batches=s.num_val_batches, shard=shard)
        info = self.info = data.info
        summary = (f"Training on {info.num_train_pieces} pieces ({info.train_steps} windows per "
                   f"epoch), validating on {info.num_val_pieces} pieces; "
                   f"{len(info.skipped_files)} files skipped")
        return Datasets(data.train, data.validation, summary)

    def build_model(self, batch_size):
        return SampleRNN.from_run_config(self.config).build_for_batch(batch_size)

    def build_optimizer(self):
        s = self.settings
        return make_optimizer(s.optimizer, s.learning_rate, s.momentum)

    def restore(self, run, path):
        """Weights, epoch and (when the optimizer kind is unchanged) optimizer state."""
        saved = load_training_args(run_dir_of(path)).get("optimizer", self.settings.optimizer)
        if saved == self.settings.optimizer:
            return run.store.restore(path)
        print(f"Note: {path} was trained with {saved}; {self.settings.optimizer} starts with "
              f"fresh optimizer state")
        # Restore into a twin, so that no deferred restoration of the old optimizer's slots
        # stays attached to the model that is trained.
        twin = SampleRNN.from_run_config(self.config).build_for_batch(1)
        twin_store = CheckpointStore(run.store.run_dir, twin)
        epoch = twin_store.restore(path, with_optimizer=False)
        run.model.set_weights(twin.get_weights())
        run.store.best.assign(twin_store.best)
        run.store.counter.assign(epoch)
        return epoch

    def learning_rates(self, resume_path):
        saved = load_training_args(run_dir_of(resume_path)).get("learning_rate")
        return self.settings.learning_rate, saved

    def describe_position(self, run, number):
        return f"epoch {number} (optimizer step {int(run.optimizer.iterations.numpy())})"

    def compile_options(self, data):
        # One compiled execution walks the windows of a batch of pieces (or divides
        # --steps_per_epoch).
        per_execution = self.info.windows_per_piece
        if self.settings.steps_per_epoch:
            per_execution = math.gcd(per_execution, self.settings.steps_per_epoch)
        return {"steps_per_execution": per_execution}

    def epochs(self):
        return self.settings.num_epochs

    def checkpoint_policy(self):
        return self.policy, self.settings.checkpoint_every

    def fit_options(self, data):
        steps = self.settings.steps_per_epoch
        return {"x": data.train.repeat() if steps else data.train, "steps_per_epoch": steps}

    def epoch_steps(self, data):
        return self.settings.steps_per_epoch or self.info.train_steps

    def callbacks(self, run):
        s = self.settings
        callbacks = [keras.callbacks.EarlyStopping(monitor=run.monitor,
                                                   patience=s.early_stopping_patience)]
        if s.reduce_learning_rate_after is not None:
            callbacks.append(keras.callbacks.LearningRateScheduler(
                lambda epoch, _lr: decayed_learning_rate(epoch, s.learning_rate,
                                                         s.reduce_learning_rate_after)))
        return callbacks

    def on_checkpoint(self, run):
        if not (self.settings.generate and self.settings.max_generate_per_epoch > 0
                and run.cluster.is_chief):
            return []
        writer = run.writer("audio")
        output_dir = os.path.join(self.settings.output_dir, self.run_id)
        return [lambda epoch, _path: self.generate_audio(run.model, epoch, output_dir, writer)]

    def generate_audio(self, model, epoch, output_dir, writer):
        """One WAV per temperature after a checkpoint, and its sound and picture (waveform,
        spectrogram) to TensorBoard."""
        s, c = self.settings, self.config
        num_samples = int(round(s.output_file_dur * s.sample_rate))
        primes = (None if self.prime_levels is None
                  else np.tile(self.prime_levels[None], (len(self.temperatures), 1)))
        levels = generate(model, num_samples, self.temperatures, prime_levels=primes,
                          rng_seed=epoch, progress=ProgressLine("Generating", "samples").update)
        audio = dequantize(levels, c["q_type"], c["q_levels"]).numpy()
        os.makedirs(output_dir, exist_ok=True)
        for i, (samples, temperature) in enumerate(zip(audio, self.temperatures)):
            name = f"epoch_{epoch:03d}_t{temperature:g}" + (f"_{i}" if len(audio) > 1 else "")
            path = os.path.join(output_dir, name + ".wav")
            free = unused_paths([path])[0]
            if free != path:
                print(f"{path} exists (from an earlier run): writing {free} instead")
            save_wav(free, samples, s.sample_rate)
            print(f"Generated {free}")
            picture = audio_figure(samples, s.sample_rate, os.path.basename(free))
            with writer.as_default():
                tf.summary.audio(name, samples[None, :, None], s.sample_rate, step=epoch)
                # Its own tag: TensorBoard keeps one kind of summary per tag.
                tf.summary.image(f"{name}_picture", figure_image(picture), step=epoch)
        writer.flush()
