"""MusicVAE training run: melody datasets, model, resume, step-based schedule, `fit`.

Keras epochs are evaluation periods here: one "epoch" is `evaluate_interval` optimizer steps,
after which the model is evaluated on the evaluation set and checkpointed (latest and best).
"""
import math
import os

import keras
import tensorflow as tf

from audiogen.cli.args import fail
from audiogen.config import save_config
from audiogen.data.melody_dataset import make_melody_datasets
from audiogen.musicvae.model import MusicVAE
from audiogen.musicvae.summaries import AdvancedSummaries
from audiogen.training.callbacks import EpochCheckpoint
from audiogen.training.checkpoints import (CheckpointStore, build_optimizer, resolve_checkpoint,
                                           save_training_args)
from audiogen.training.logging import StepLogger
from audiogen.training.optimizers import FusedAdam
from audiogen.training.resume import check_same_config, find_resume_checkpoint

ARCHITECTURE_KEYS = ("slice_bar", "z_size", "encoder_params", "use_hier", "decoder_params",
                     "n_subsequences", "c_size", "conductor_params")
BEST_DIR = "best"


def model_from_config(config):
    """A `MusicVAE` built from a resolved config."""
    return MusicVAE.from_run_config(config)


def run(args, config):
    run_dir = os.path.join(args.logdir_root, args.id)
    interval = config["evaluate_interval"]
    try:
        if not config["train_dir"]:
            raise ValueError("MusicVAE training needs train_dir: set it in the config file or "
                             "pass --train_dir")
        if config["ckpt_path"]:
            resume_path = resolve_checkpoint(config["ckpt_path"])
        else:
            resume_path = find_resume_checkpoint(run_dir, args.resume, args.resume_from)
        if resume_path:
            check_same_config(resume_path, {k: config[k] for k in ARCHITECTURE_KEYS})
        data = make_melody_datasets(
            config["train_dir"], config["eval_dir"], slice_bar=config["slice_bar"],
            batch_size=config["batch_size"], max_slices_per_file=config["max_slices_per_file"],
            transpose_range=config["transpose_range"], eval_fraction=config["eval_fraction"],
            num_workers=config["num_workers"])
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    print(data.info.summary())

    model = model_from_config(config)
    model.build_for_batch(config["batch_size"])
    optimizer = build_optimizer(FusedAdam(config["learning_rate"]), model)
    model.compile(optimizer=optimizer, jit_compile=bool(args.jit_compile))
    store = CheckpointStore(run_dir, model, optimizer, max_to_keep=args.max_checkpoints)
    best_store = CheckpointStore(run_dir, model, optimizer, max_to_keep=1, subdir=BEST_DIR)
    initial_epoch = 0
    if resume_path:
        step = store.restore(resume_path)
        best_store.best.assign(store.best)
        initial_epoch = step // interval
        print(f"Resumed from {resume_path} at step {int(optimizer.iterations.numpy())}")
    save_config(config, run_dir)
    save_training_args(run_dir, {k: v for k, v in vars(args).items() if k != "set"})

    has_eval = data.eval is not None
    monitor = "val_loss" if has_eval else "loss"
    epochs = math.ceil(config["num_steps"] / interval)
    if epochs * interval != config["num_steps"]:
        print(f"Training {epochs * interval} steps: num_steps rounded up to a multiple of "
              f"evaluate_interval ({interval})")
    callbacks = [
        EpochCheckpoint(store, policy="Always", monitor=monitor, steps_per_epoch=interval),
        EpochCheckpoint(best_store, policy="Best", monitor=monitor, steps_per_epoch=interval),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=config["lr_scheduler_factor"],
                                          patience=config["lr_scheduler_patience"], verbose=1),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"),
                                    update_freq=config["print_interval"]),
        StepLogger(every=config["print_interval"]),
    ]
    if has_eval:
        writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard", "advanced"))
        callbacks.append(AdvancedSummaries(next(iter(data.eval)), writer,
                                           config["advanced_interval"]))
    model.fit(data.train.repeat(), steps_per_epoch=interval, epochs=epochs,
              initial_epoch=initial_epoch, validation_data=data.eval, callbacks=callbacks,
              verbose=0)
    print(f"Checkpoints and logs: {run_dir} (best: {os.path.join(run_dir, BEST_DIR)})")
    return 0
