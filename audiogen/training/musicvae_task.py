"""MusicVAE in the shared training run: melody datasets, the model, a step-based schedule.

Keras epochs are evaluation periods here: one "epoch" is `evaluate_interval` optimizer steps,
after which the model is evaluated on the validation set and checkpointed (latest and best), so
checkpoints are numbered by step. With `early_stopping_patience`, training ends after that many
evaluations without a lower validation loss (the best checkpoint stays in `<run>/best/`). The
final checkpoint, or the last one of a run stopped early, also gets the run's attribute vectors
(`training/attribute_vectors.py`).
"""
import math

import keras

from audiogen.config import load_run_config
from audiogen.data.melody_dataset import make_melody_datasets
from audiogen.kernels.dispatch import gpu_visible
from audiogen.musicvae.model import MusicVAE
from audiogen.musicvae.summaries import AdvancedSummaries
from audiogen.training.attribute_vectors import compute_after_training, final_checkpoint_hook
from audiogen.training.callbacks import StepDecay
from audiogen.training.checkpoints import resolve_checkpoint, run_dir_of
from audiogen.training.optimizers import FusedAdam
from audiogen.training.run import Datasets, TrainingTask

ARCHITECTURE_KEYS = ("slice_bar", "z_size", "encoder_params", "use_hier", "decoder_params",
                     "n_subsequences", "c_size", "conductor_params")


class MusicVAETask(TrainingTask):
    """A MusicVAE training run; `config` a resolved MusicVAE config (it holds every setting)."""
    keeps_best = True

    def __init__(self, config):
        self.config = config
        self.steps_per_checkpoint = config["evaluate_interval"]
        self.tensorboard_update_freq = config["print_interval"]

    @property
    def default_jit_compile(self):
        """On a CPU the LSTM steps run fastest as TensorFlow graph ops with the compiled cell
        ops; on a GPU (where those ops do not run) under XLA."""
        return gpu_visible()

    def check(self):
        if not self.config["train_dir"]:
            raise ValueError("MusicVAE training needs train_dir: set it in the config file or "
                             "pass --train_dir")

    def configured_resume(self):
        path = self.config["ckpt_path"]
        return resolve_checkpoint(path) if path else None

    def compared_config(self):
        return {k: self.config[k] for k in ARCHITECTURE_KEYS}

    def global_batch(self):
        return self.config["batch_size"]

    def datasets(self, shard=None):
        c = self.config
        data = make_melody_datasets(
            c["train_dir"], c["eval_dir"], slice_bar=c["slice_bar"], batch_size=c["batch_size"],
            max_slices_per_file=c["max_slices_per_file"], transpose_range=c["transpose_range"],
            eval_fraction=c["eval_fraction"], num_workers=c["num_workers"], meters=c["meters"],
            shard=shard)
        return Datasets(data.train, data.validation, data.info.summary())

    def build_model(self, batch_size):
        return MusicVAE.from_run_config(self.config)

    def build_optimizer(self):
        return FusedAdam(self.config["learning_rate"])

    def learning_rates(self, resume_path):
        saved = load_run_config(run_dir_of(resume_path))
        return self.config["learning_rate"], None if saved is None else saved["learning_rate"]

    def epochs(self):
        c = self.config
        epochs = math.ceil(c["num_steps"] / c["evaluate_interval"])
        if epochs * c["evaluate_interval"] != c["num_steps"]:
            print(f"Training {epochs * c['evaluate_interval']} steps: num_steps rounded up to a "
                  f"multiple of evaluate_interval ({c['evaluate_interval']})")
        return epochs

    def log_every(self):
        return self.config["print_interval"]

    def fit_options(self, data):
        return {"x": data.train.repeat(), "steps_per_epoch": self.config["evaluate_interval"]}

    def epoch_steps(self, data):
        return self.config["evaluate_interval"]

    def callbacks(self, run):
        c = self.config
        callbacks = [keras.callbacks.ReduceLROnPlateau(
            monitor=run.monitor, factor=c["lr_scheduler_factor"],
            patience=c["lr_scheduler_patience"], verbose=1)]
        if c["decay_rate"] < 1:
            callbacks.append(StepDecay(c["decay_rate"], c["min_learning_rate"],
                                       c["decay_start_step"]))
        if run.data.validation is not None:
            callbacks.append(AdvancedSummaries(next(iter(run.data.validation)),
                                               run.writer("advanced"), c["advanced_interval"]))
        return callbacks + self._early_stopping(run)

    def _early_stopping(self, run):
        """Keras's `EarlyStopping` on the run's monitor, and the end of a run it stopped: a
        line that says why, and the attribute vectors of its last checkpoint."""
        patience = self.config["early_stopping_patience"]
        if patience is None:
            return []
        stopper = keras.callbacks.EarlyStopping(monitor=run.monitor, patience=patience)

        def on_train_end(_logs=None):
            if not stopper.stopped_epoch:
                return
            step = (stopper.stopped_epoch + 1) * self.steps_per_checkpoint
            print(f"Stopped early at step {step}: {run.monitor} did not improve on "
                  f"{stopper.best:.4f} for {patience} evaluations (early_stopping_patience); "
                  f"the best checkpoint is in {run.best_store.directory}")
            if run.cluster.is_chief and run.store.latest:
                compute_after_training(self.config, run, run.store.latest)

        return [stopper, keras.callbacks.LambdaCallback(on_train_end=on_train_end)]

    def on_checkpoint(self, run):
        return final_checkpoint_hook(self.config, run)
