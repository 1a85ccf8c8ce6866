"""Deciding where a run resumes from, and refusing when its saved config differs."""
import os

import tensorflow as tf

from audiogen.config import config_differences, describe_differences, load_run_config
from audiogen.training.checkpoints import (CHECKPOINT_DIR, INTERRUPTED_DIR, load_training_args,
                                           resolve_checkpoint, run_dir_of, saved_counter)
from audiogen.training.guards import interrupted_state


def find_resume_checkpoint(run_dir, resume, resume_from=None):
    """The checkpoint to resume from, or None to start fresh.

    Raises ValueError rather than start over in a run directory that already holds checkpoints
    (nothing is overwritten), and FileNotFoundError when `resume_from` names nothing.
    """
    if resume and resume_from:
        return resolve_checkpoint(resume_from)
    existing = tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))
    if resume:
        return existing
    existing = existing or tf.train.latest_checkpoint(os.path.join(run_dir, INTERRUPTED_DIR))
    if existing:
        raise ValueError(f"{run_dir} already holds checkpoints (newest {existing}) and --resume "
                         f"is false: pass --resume true to continue it, or another --id")
    return None


def resume_point(run_dir, resume, resume_from=None):
    """`(checkpoint, steps_done)`: where a run resumes (`find_resume_checkpoint`), and how many
    steps of its epoch were done when it was saved mid-epoch (0 for an epoch's checkpoint); a
    run's own state saved when it was interrupted wins over its older epoch checkpoint."""
    latest = find_resume_checkpoint(run_dir, resume, resume_from)
    state = interrupted_state(run_dir) if resume and not resume_from else None
    if state is None:
        return latest, 0
    path, number, done = state
    if latest is not None and saved_counter(latest) > number:
        return latest, 0          # a later epoch checkpoint: the saved state is stale
    return path, done


# Keys that change how a run computes but not its weights; a resumed run may change them.
CHANGEABLE_ON_RESUME = ("precision",)


def check_same_config(resume_path, config, extra=None):
    """Raise ValueError naming each key of `config` whose saved value differs.

    `extra` holds training arguments that must match too (e.g. {"sample_rate": 16000}); they
    are compared with the run's saved training arguments.
    """
    saved_dir = run_dir_of(resume_path)
    saved = load_run_config(saved_dir)
    if saved is None:
        return
    extra = extra or {}
    saved_args = load_training_args(saved_dir)
    requested = dict(config, **extra)
    saved = {k: saved_args.get(k, v) if k in extra else saved.get(k) for k, v in requested.items()}
    keys = [k for k in config_differences(saved, requested) if k not in CHANGEABLE_ON_RESUME]
    if keys:
        lines = "\n  ".join(describe_differences(saved, requested, keys))
        raise ValueError(f"cannot resume from {resume_path}: its run was trained with a different "
                         f"config (saved -> requested):\n  {lines}\nUse the run's "
                         f"{saved_dir}/resolved.config.json, or start a new --id.")
