"""SampleRNN training run: datasets, model, resume, callbacks, `fit`."""
import math
import os

import keras
import numpy as np
import tensorflow as tf

from audiogen.audio.io import save_wav
from audiogen.audio.quantize import dequantize
from audiogen.cli.args import cycle_temperatures, fail
from audiogen.cli.seed_audio import load_seed_levels, parse_offset
from audiogen.cli.train import SAMPLERNN_BATCH_SIZE, SAMPLERNN_LEARNING_RATE
from audiogen.config import save_config
from audiogen.data.audio_dataset import make_audio_datasets
from audiogen.samplernn.model import SampleRNN
from audiogen.samplernn.sampler import generate
from audiogen.training.callbacks import (EpochCheckpoint, decayed_learning_rate,
                                         normalize_checkpoint_policy)
from audiogen.training.checkpoints import (CheckpointStore, build_optimizer, load_training_args,
                                           run_dir_of, save_training_args)
from audiogen.training.logging import StepLogger
from audiogen.training.optimizers import FusedAdam
from audiogen.training.resume import check_same_config, find_resume_checkpoint

SEED_SECONDS = 1.0  # length of the priming excerpt used for generation during training


def model_from_config(config):
    """A `SampleRNN` built from a resolved config."""
    return SampleRNN(**{k: config[k] for k in (
        "frame_sizes", "dim", "rnn_type", "num_rnn_layers", "q_type", "q_levels", "emb_size",
        "skip_conn", "seq_len", "max_grad_norm", "precision")})


def make_optimizer(name, learning_rate, momentum):
    if name == "adam":
        return FusedAdam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    return keras.optimizers.RMSprop(learning_rate, momentum=momentum)


def restore_for_resume(store, resume_path, optimizer_name, config):
    """Restore weights, epoch and (when the optimizer kind is unchanged) optimizer state."""
    saved = load_training_args(run_dir_of(resume_path)).get("optimizer", optimizer_name)
    if saved == optimizer_name:
        return store.restore(resume_path)
    print(f"Note: {resume_path} was trained with {saved}; {optimizer_name} starts with fresh "
          f"optimizer state")
    # Restore into a twin, so that no deferred restoration of the old optimizer's slots
    # stays attached to the model that is trained.
    twin = model_from_config(config).build_for_batch(1)
    twin_store = CheckpointStore(store.run_dir, twin)
    epoch = twin_store.restore(resume_path, with_optimizer=False)
    store.model.set_weights(twin.get_weights())
    store.best.assign(twin_store.best)
    store.counter.assign(epoch)
    return epoch


def run(args, config):
    batch_size = SAMPLERNN_BATCH_SIZE if args.batch_size is None else args.batch_size
    learning_rate = SAMPLERNN_LEARNING_RATE if args.learning_rate is None else args.learning_rate
    try:
        if not args.data_dir:
            raise ValueError("--data_dir is required to train a SampleRNN")
        policy = normalize_checkpoint_policy(args.checkpoint_policy)
        temperatures = cycle_temperatures(args.temperature, max(args.max_generate_per_epoch, 1))
        run_dir = os.path.join(args.logdir_root, args.id)
        resume_path = find_resume_checkpoint(run_dir, args.resume, args.resume_from)
        if resume_path:
            check_same_config(resume_path, config, {"sample_rate": args.sample_rate})
        seed_levels = None
        if args.generate and args.seed:
            offset = parse_offset(args.seed_offset, args.sample_rate)
            seed_levels = load_seed_levels(args.seed, offset, args.sample_rate,
                                           int(SEED_SECONDS * args.sample_rate),
                                           config["q_type"], config["q_levels"])
        data = make_audio_datasets(
            args.data_dir, sample_rate=args.sample_rate, batch_size=batch_size,
            seq_len=config["seq_len"], top_frame_size=config["frame_sizes"][-1],
            q_type=config["q_type"], q_levels=config["q_levels"], piece_dur=config["piece_dur"],
            num_val_batches=args.num_val_batches)
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))

    info = data.info
    print(f"Training on {info.num_train_pieces} pieces ({info.train_steps} windows per epoch), "
          f"validating on {info.num_val_pieces} pieces; {len(info.skipped_files)} files skipped")
    model = model_from_config(config)
    model.build_for_batch(batch_size)
    optimizer = build_optimizer(make_optimizer(args.optimizer, learning_rate, args.momentum), model)
    # One compiled execution walks the windows of a batch of pieces (or divides --steps_per_epoch).
    per_execution = info.windows_per_piece
    if args.steps_per_epoch:
        per_execution = math.gcd(per_execution, args.steps_per_epoch)
    store = CheckpointStore(run_dir, model, optimizer, max_to_keep=args.max_checkpoints)
    initial_epoch = 0
    if resume_path:
        initial_epoch = restore_for_resume(store, resume_path, args.optimizer, config)
        print(f"Resumed from {resume_path} at epoch {initial_epoch} "
              f"(optimizer step {int(optimizer.iterations.numpy())})")
    model.compile(optimizer=optimizer, jit_compile=args.jit_compile is not False,
                  steps_per_execution=per_execution)
    save_config(config, run_dir)
    save_training_args(run_dir, {k: v for k, v in vars(args).items()
                                 if k not in ("set",)} | {"batch_size": batch_size,
                                                          "learning_rate": learning_rate})

    monitor = "val_loss" if data.val is not None else "loss"
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard", "audio"))
    on_saved = []
    if args.generate and args.max_generate_per_epoch > 0:
        output_dir = os.path.join(args.output_dir, args.id)
        on_saved.append(lambda epoch, _path: generate_during_training(
            model, epoch, temperatures, seed_levels, args, config, output_dir, writer))
    callbacks = [
        EpochCheckpoint(store, args.checkpoint_every, policy, monitor, on_saved),
        keras.callbacks.EarlyStopping(monitor=monitor, patience=args.early_stopping_patience),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"), update_freq=100),
    ]
    if args.reduce_learning_rate_after is not None:
        after = args.reduce_learning_rate_after
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch, _lr: decayed_learning_rate(epoch, learning_rate, after)))
    if args.verbose:
        callbacks.append(StepLogger())
    train = data.train.repeat() if args.steps_per_epoch else data.train
    model.fit(train, validation_data=data.val, epochs=args.num_epochs,
              initial_epoch=initial_epoch, steps_per_epoch=args.steps_per_epoch,
              callbacks=callbacks, verbose=0 if args.verbose else 1)
    print(f"Checkpoints and logs: {run_dir}")
    return 0


def generate_during_training(model, epoch, temperatures, seed_levels, args, config, output_dir,
                             writer):
    """Write one WAV per temperature after a checkpoint, and audio summaries to TensorBoard."""
    num_samples = int(round(args.output_file_dur * args.sample_rate))
    seeds = None if seed_levels is None else np.tile(seed_levels[None], (len(temperatures), 1))
    levels = generate(model, num_samples, temperatures, seed_levels=seeds, rng_seed=epoch)
    audio = dequantize(levels, config["q_type"], config["q_levels"]).numpy()
    os.makedirs(output_dir, exist_ok=True)
    for i, (samples, temperature) in enumerate(zip(audio, temperatures)):
        name = f"epoch_{epoch:03d}_t{temperature:g}" + (f"_{i}" if len(audio) > 1 else "")
        path = os.path.join(output_dir, name + ".wav")
        save_wav(path, samples, args.sample_rate)
        print(f"Generated {path}")
        with writer.as_default():
            tf.summary.audio(name, samples[None, :, None], args.sample_rate, step=epoch)
    writer.flush()
