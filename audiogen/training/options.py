"""The settings of a training run, with their defaults (the one source of `train.py`'s defaults).

Plain data without TensorFlow, so that `train.py --help` starts at once.
"""
import dataclasses
import os

OPTIMIZERS = ("adam", "sgd", "rmsprop")
STRATEGIES = ("default", "mirrored", "multi_worker")  # see `audiogen.training.distribution`


@dataclasses.dataclass
class RunOptions:
    """What every training run is told, whatever the model (`train.py`'s run flags).

    Args:
        id: `str`, the run's name: it lives in `<logdir_root>/<id>/`.
        logdir_root: `str`, the folder of all runs.
        resume: `bool`, continue from the run's newest checkpoint (or `resume_from`).
        resume_from: `str` or None, a checkpoint prefix or run directory to resume from.
        init_from: `str` or None, a checkpoint prefix or run directory whose model weights
            start a new run (fine-tuning, or a curriculum from shorter melodies); its optimizer
            state and step are not taken, and a run that resumes ignores it.
        max_checkpoints: `int` or None (keep all), checkpoints kept on disk.
        jit_compile: `bool` or None (the task's default), compile the step with XLA.
        verbose: `bool`, one line per logged step instead of a progress bar.
        strategy: `str`, one of `STRATEGIES`: one device, the local GPUs, or the workers of
            `TF_CONFIG`.
    """
    id: str = "default"
    logdir_root: str = "./logdir"
    resume: bool = True
    resume_from: str = None
    init_from: str = None
    max_checkpoints: int = 5
    jit_compile: bool = None
    verbose: bool = True
    strategy: str = "default"

    @property
    def run_dir(self):
        return os.path.join(self.logdir_root, self.id)


@dataclasses.dataclass
class SampleRNNTraining:
    """SampleRNN's training settings: the parameters of PRiSM SampleRNN's `train.py`, with the
    same names and defaults (its `seed` / `seed_offset`, the priming audio, are `prime` /
    `prime_offset` here)."""
    data_dir: str = None
    num_epochs: int = 100
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 0.001
    reduce_learning_rate_after: int = None
    momentum: float = 0.9
    checkpoint_every: int = 1
    checkpoint_policy: str = "All"
    early_stopping_patience: int = 3
    generate: bool = True
    max_generate_per_epoch: int = 1
    sample_rate: int = 22050
    output_file_dur: float = 3.0
    temperature: tuple = (0.75,)
    prime: str = None
    prime_offset: str = "0"
    num_val_batches: int = 1
    steps_per_epoch: int = None
    output_dir: str = "./generated"
