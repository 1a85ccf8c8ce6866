"""A run exported to ship: one checkpoint's model weights without the optimizer state.

`export_run` writes a run directory that `generate.py --checkpoint_path` reads like any other:
`checkpoints/ckpt-N` (the model's weights and the epoch or step N they reached), the resolved
config (overrides applied, e.g. a `train_dir` that exists where the model ships), the training
flags, and the attribute vectors of that checkpoint when the run has them. Adam keeps two slots
per weight, so the export is about a third of a training checkpoint.

Everything is written into a temporary folder beside the destination and renamed when complete:
an interrupted export leaves no half-written model.
"""
import dataclasses
import os
import shutil
import tempfile

from audiogen.config import save_config
from audiogen.musicvae import attribute_vectors
from audiogen.training.attribute_vectors import checkpoint_name
from audiogen.training.checkpoints import (CHECKPOINT_DIR, CheckpointStore, saved_counter,
                                           save_training_args)
from audiogen.training.trained import load_trained


def export_run(checkpoint_path, out_dir, config=None, overwrite=False):
    """Export `checkpoint_path` (a run directory: its newest checkpoint; or a checkpoint prefix)
    to the new run directory `out_dir`; returns the exported checkpoint's prefix.

    Args:
        config: `dict`, the resolved config to store (default: the run's own); it must describe
            the same model.
        overwrite: replace an existing `out_dir` (else FileExistsError).
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not overwrite:
        raise FileExistsError(f"{out_dir} exists: choose a new folder, or pass --overwrite")
    trained = load_trained(checkpoint_path)
    number = saved_counter(trained.checkpoint)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f".tmp-{os.path.basename(out_dir)}-")
    try:
        prefix = CheckpointStore(staging, trained.model, max_to_keep=1).save(number)
        save_config(config or trained.config, staging)
        save_training_args(staging, trained.training_args)
        _copy_attribute_vectors(trained, staging, prefix)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's folder is private
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return os.path.join(out_dir, CHECKPOINT_DIR, os.path.basename(prefix))


def _copy_attribute_vectors(trained, staging, prefix):
    """The run's attribute vectors, when they are those of the exported checkpoint."""
    if trained.config["model"] != "musicvae":
        return
    stored = attribute_vectors.load(trained.run_dir)
    if stored is None or stored.checkpoint != checkpoint_name(trained.checkpoint,
                                                              trained.run_dir):
        return
    dataclasses.replace(stored, checkpoint=checkpoint_name(prefix, staging)).save(staging)


def exported_size(run_dir):
    """Bytes of every file under `run_dir`."""
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(run_dir) for name in names)

