"""Stopped training runs lose nothing: SIGINT / SIGTERM save the state mid-epoch and the same
command resumes from that step; SIGKILL at random moments resumes from the last complete
checkpoint; both finish with the optimizer steps of an uninterrupted run."""
import os
import random
import re
import signal
import time

import pytest

from audiogen.kernels.dispatch import compiled_op
from run_helpers import (TrainProcess, checkpoint_numbers, latest_checkpoint, musicvae_args,
                         optimizer_step, run_dir, samplernn_args)

pytestmark = pytest.mark.slow
SAMPLERNN_EPOCH = 144          # windows an epoch of `samplernn_args`' corpus
TIMEOUT = 240                  # seconds any one training process may take


@pytest.fixture(scope="module", autouse=True)
def built_ops():
    """Build the compiled ops once, here, so that no killed process dies while compiling."""
    for name in ("lstm_cell", "stream_matmul", "sample_frame"):
        compiled_op(name)


@pytest.mark.parametrize("kind,signum", [("samplernn", signal.SIGTERM),
                                         ("musicvae", signal.SIGINT)])
def test_a_signal_saves_mid_epoch_and_the_run_resumes_from_that_step(tmp_path, kind, signum):
    folder = str(tmp_path)
    if kind == "samplernn":
        args, epoch_steps, total = samplernn_args(folder, 3, "--generate", "false"), \
            SAMPLERNN_EPOCH, 3 * SAMPLERNN_EPOCH
        # steps are printed per compiled execution (16 windows): stop well inside epoch 2
        pattern = r"^epoch 2 step (\d+):"
    else:
        args, epoch_steps, total = musicvae_args(folder, 30, 10), 10, 30
        pattern = r"^epoch 2 step (1[3-7]):"
    process = TrainProcess(args)
    line = process.wait_for(pattern, TIMEOUT)
    assert line, "".join(process.lines)
    process.process.send_signal(signum)
    code, output = process.finish(TIMEOUT)
    assert code == 128 + signum, output
    stopped = int(re.search(r"stopped at step (\d+) \((\d+) steps into epoch 2\)", output)[1])
    assert stopped > epoch_steps and "Run the same command again" in output
    assert checkpoint_numbers(folder) == [epoch_steps if kind == "musicvae" else 1]
    assert checkpoint_numbers(folder, "interrupted")

    code, output = TrainProcess(args).finish(TIMEOUT)
    assert code == 0, output
    assert f"{stopped - epoch_steps} steps into the next epoch" in output
    # the resumed run starts at the saved step, not at the epoch's start
    first_step = int(re.search(r"^epoch 2 step (\d+):", output, re.M)[1])
    assert stopped < first_step <= stopped + 16
    assert optimizer_step(latest_checkpoint(folder)) == total
    assert not os.path.exists(os.path.join(run_dir(folder), "interrupted"))


@pytest.mark.parametrize("kind", ["samplernn", "musicvae"])
def test_sigkill_at_random_moments_loses_only_the_unfinished_epoch(tmp_path, kind):
    folder = str(tmp_path)
    if kind == "samplernn":   # a log line per compiled execution: 9 an epoch
        args, epoch_steps, total = samplernn_args(folder, 12), SAMPLERNN_EPOCH, 12 * SAMPLERNN_EPOCH
        lines_per_epoch = 9
    else:                     # a log line per step
        args, epoch_steps, total = musicvae_args(folder, 240, 20), 20, 240
        lines_per_epoch = 20
    # Each attempt gets at most two epochs: five of them leave the run unfinished (12 epochs).
    rng = random.Random(kind)
    resumed = 0
    for _ in range(5):
        # A random moment within the first two epochs of this attempt: a step, an evaluation,
        # a checkpoint being written, audio being generated.
        process = TrainProcess(args)
        for _ in range(rng.randint(1, 2 * lines_per_epoch)):
            assert process.wait_for(r"^epoch \d+ step", TIMEOUT), "".join(process.lines)
        time.sleep(rng.uniform(0.0, 0.5))
        assert process.process.poll() is None, "the run ended before it was killed"
        process.process.kill()
        _, output = process.finish(TIMEOUT)
        resumed += "Resumed from" in output
        newest = latest_checkpoint(folder)
        if newest:  # the newest complete checkpoint holds its epoch's steps exactly
            number = int(newest.rsplit("-", 1)[1])
            steps = number * (epoch_steps if kind == "samplernn" else 1)
            assert optimizer_step(newest) == steps, output
    code, output = TrainProcess(args).finish(TIMEOUT)
    assert code == 0, output
    resumed += "Resumed from" in output
    assert resumed >= 1
    assert optimizer_step(latest_checkpoint(folder)) == total
