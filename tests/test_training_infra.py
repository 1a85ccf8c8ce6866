import argparse
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from audiogen.audio.prime import parse_offset
from audiogen.cli.args import int_or_none, str2bool
from audiogen.temperatures import cycle_temperatures
from audiogen.config import resolve_config, save_config
from audiogen.training.callbacks import (EpochCheckpoint, StepDecay, decayed_learning_rate,
                                         normalize_checkpoint_policy, step_decayed_rate,
                                         steps_past)
from audiogen.training.checkpoints import (CheckpointStore, build_optimizer, resolve_checkpoint,
                                           run_dir_of, save_training_args)
from audiogen.training.resume import check_same_config, find_resume_checkpoint


def tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = build_optimizer(keras.optimizers.Adam(0.01), model)
    return model, optimizer


def test_cycle_temperatures():
    assert cycle_temperatures([0.5, 0.9], 4) == [0.5, 0.9, 0.5, 0.9]
    assert cycle_temperatures([0.75], 3) == [0.75] * 3
    with pytest.raises(ValueError, match="got 3 values for --num_seqs 2"):
        cycle_temperatures([0.1, 0.2, 0.3], 2)


def test_boolean_and_none_flags():
    assert str2bool("True") is True and str2bool("no") is False
    with pytest.raises(argparse.ArgumentTypeError):
        str2bool("maybe")
    assert int_or_none("None") is None and int_or_none("7") == 7


def test_seed_offset_in_samples_or_seconds():
    assert parse_offset("16000", 16000) == 16000
    assert parse_offset("1.5s", 16000) == 24000
    with pytest.raises(ValueError, match="expected samples"):
        parse_offset("abc", 16000)


def test_learning_rate_decay_is_exponential_after_n_epochs():
    assert decayed_learning_rate(0, 1e-3, 2) == 1e-3
    assert decayed_learning_rate(1, 1e-3, 2) == 1e-3
    assert decayed_learning_rate(2, 1e-3, 2) == pytest.approx(1e-3 * math.exp(-0.1))
    assert decayed_learning_rate(4, 1e-3, 2) == pytest.approx(1e-3 * math.exp(-0.3))
    assert decayed_learning_rate(50, 1e-3, None) == 1e-3


def test_step_decay_multiplies_per_step_down_to_the_minimum():
    assert step_decayed_rate(0.01, 0.5, 1e-3) == pytest.approx(0.005)
    assert step_decayed_rate(0.01, 0.5, 1e-3, steps=3) == pytest.approx(0.00125)
    assert step_decayed_rate(0.01, 0.5, 1e-3, steps=4) == pytest.approx(1e-3)
    assert step_decayed_rate(1e-4, 0.5, 1e-3) == pytest.approx(1e-4)  # lowered by a plateau
    assert step_decayed_rate(0.01, 1.0, 1e-3) == pytest.approx(0.01)


def test_step_decay_in_fit_and_after_a_plateau_reduction():
    model, optimizer = tiny_model()
    model.compile(optimizer=optimizer, loss="mse")
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[StepDecay(0.5, 1e-4)])
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.0025)
    optimizer.learning_rate = 0.001  # as ReduceLROnPlateau sets it
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[StepDecay(0.5, 1e-4)])
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
    model, optimizer = tiny_model()
    model.compile(optimizer=optimizer, loss="mse", steps_per_execution=2)  # one call, two steps
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[StepDecay(0.5, 1e-4)])
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.0025)


def test_steps_past_the_start_of_the_decay():
    assert steps_past(0, 0, 3) == 3
    assert steps_past(5, 0, 3) == 0
    assert steps_past(5, 3, 7) == 2
    assert steps_past(5, 6, 7) == 1


def test_step_decay_starts_after_its_step():
    model, optimizer = tiny_model()
    model.compile(optimizer=optimizer, loss="mse")
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[StepDecay(0.5, 1e-4, start=2)])
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.0025)  # steps 3 and 4
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[StepDecay(0.5, 1e-4, start=6)])
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.0025 / 4)  # steps 7 and 8


def test_policy_names():
    assert normalize_checkpoint_policy("All") == "Always"
    assert normalize_checkpoint_policy("best") == "Best"
    with pytest.raises(ValueError, match="checkpoint_policy"):
        normalize_checkpoint_policy("Sometimes")


def test_checkpoint_round_trip_restores_weights_optimizer_and_counter(tmp_path):
    model, optimizer = tiny_model()
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, epochs=3, verbose=0)
    store = CheckpointStore(str(tmp_path), model, optimizer)
    path = store.save(3)
    assert resolve_checkpoint(str(tmp_path)) == path
    assert resolve_checkpoint(path) == path
    assert run_dir_of(path) == str(tmp_path)
    assert run_dir_of(str(tmp_path / "best" / "ckpt-500")) == str(tmp_path)

    fresh, fresh_opt = tiny_model()
    assert int(CheckpointStore(str(tmp_path), fresh, fresh_opt).restore(path)) == 3
    np.testing.assert_array_equal(fresh.get_weights()[0], model.get_weights()[0])
    assert int(fresh_opt.iterations.numpy()) == int(optimizer.iterations.numpy()) == 3


def test_restore_into_mismatched_model_fails(tmp_path):
    model, optimizer = tiny_model()
    path = CheckpointStore(str(tmp_path), model, optimizer).save(1)
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    with pytest.raises((AssertionError, ValueError)):
        CheckpointStore(str(tmp_path), other).restore(path, with_optimizer=False)


def test_resolve_checkpoint_error_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        resolve_checkpoint(str(tmp_path / "nothing"))


def run_epoch_ends(callback, losses):
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"val_loss": loss})


def test_best_policy_saves_only_on_improvement_and_max_to_keep(tmp_path):
    model, optimizer = tiny_model()
    store = CheckpointStore(str(tmp_path), model, optimizer, max_to_keep=2)
    saved = []
    callback = EpochCheckpoint(store, policy="Best", on_saved=[lambda n, p: saved.append(n)])
    run_epoch_ends(callback, [3.0, 2.0, 2.5, 1.0, 1.5])
    assert saved == [1, 2, 4]
    assert [os.path.basename(p) for p in store.all] == ["ckpt-2", "ckpt-4"]


def test_always_policy_respects_interval(tmp_path):
    model, optimizer = tiny_model()
    store = CheckpointStore(str(tmp_path), model, optimizer, max_to_keep=None)
    callback = EpochCheckpoint(store, every=2, policy="All")
    run_epoch_ends(callback, [3.0, 2.0, 2.5, 1.0, 1.5])
    assert [os.path.basename(p) for p in store.all] == ["ckpt-2", "ckpt-4"]


def test_resume_refuses_changed_config_and_names_keys(tmp_path):
    model, optimizer = tiny_model()
    run_dir = str(tmp_path / "run")
    path = CheckpointStore(run_dir, model, optimizer).save(1)
    save_config(resolve_config({"dim": 32}), run_dir)
    save_training_args(run_dir, {"sample_rate": 16000})
    check_same_config(path, resolve_config({"dim": 32}), {"sample_rate": 16000})
    # The precision of the products does not change the weights: a run may resume with another.
    check_same_config(path, resolve_config({"dim": 32, "precision": "mixed_bfloat16"}),
                      {"sample_rate": 16000})
    with pytest.raises(ValueError, match=r"(?s)dim: 32 -> 64.*sample_rate: 16000 -> 22050"):
        check_same_config(path, resolve_config({"dim": 64}), {"sample_rate": 22050})
    assert find_resume_checkpoint(run_dir, resume=True) == path
    with pytest.raises(ValueError, match="already holds checkpoints"):
        find_resume_checkpoint(run_dir, resume=False)
    assert find_resume_checkpoint(str(tmp_path / "new"), resume=True) is None


def test_comparison_image_is_one_rgb_picture():
    from audiogen.musicvae.summaries import comparison_image
    image = comparison_image(np.zeros((2, 7), int), np.zeros((2, 7), int))
    assert image.shape[0] == 1 and image.shape[3] == 3  # one RGB picture of the four rolls
    assert tf.convert_to_tensor(image).dtype == tf.uint8
