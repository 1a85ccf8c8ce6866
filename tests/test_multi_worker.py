"""Two `train.py --strategy multi_worker` processes on 127.0.0.1 (free ports, bounded in time):
both models train to the end with the same weights on both workers, only the chief writes
files, and a run stopped by a signal to one worker resumes under the strategy.
"""
import json
import os
import signal
import socket

import pytest

from run_helpers import TrainProcess, musicvae_args, run_dir, samplernn_args

pytestmark = pytest.mark.slow
LIMIT = 240  # seconds for one two-worker run on a loaded 2-core machine


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(args, scratch):
    """Two workers of one cluster; each one's temporary files go to its own `scratch` folder."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tmp = os.path.join(scratch, f"tmp{index}")
        os.makedirs(tmp, exist_ok=True)
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(TrainProcess([*args, "--strategy", "multi_worker"],
                                      env={"TF_CONFIG": json.dumps(config), "TMPDIR": tmp}))
    return processes


def finish(processes):
    results = [p.finish(LIMIT) for p in processes]
    return [code for code, _ in results], [out for _, out in results]


def digests(outputs):
    found = []
    for out in outputs:
        lines = [line for line in out.splitlines() if "Replicas in sync" in line]
        assert len(lines) == 1, out[-3000:]
        found.append(lines[0].split("digest ")[1].rstrip(")"))
    return found


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


def assert_only_the_chief_wrote(tmp_path, scratch, chiefs):
    """No temporary file is left, and every TensorBoard file is one of the chiefs' (by the
    process id in its name); returns the files under `tmp_path`."""
    assert files_under(scratch) == [], "a worker left temporary files"
    written = files_under(tmp_path)
    events = [f for f in written if ".tfevents." in f]
    assert events and {int(os.path.basename(f).split(".")[-3]) for f in events} <= chiefs
    return written


def test_samplernn_two_workers_stop_together_on_one_signal_and_resume(tmp_path):
    args = samplernn_args(str(tmp_path), 2, "--steps_per_epoch", "48", "--max_checkpoints", "2")
    scratch = tmp_path.parent / f"{tmp_path.name}-scratch"
    workers = start_workers(args, str(scratch))
    chiefs = {workers[0].process.pid}
    assert workers[1].wait_for(r"epoch 1 step", LIMIT), workers[1].finish(LIMIT)[1][-3000:]
    workers[1].process.send_signal(signal.SIGTERM)  # only the second worker is told to stop
    codes, outputs = finish(workers)
    assert codes == [128 + signal.SIGTERM] * 2, outputs[0][-3000:] + outputs[1][-3000:]
    assert all("SIGTERM: stopped at step" in out for out in outputs)
    steps = {out.split("SIGTERM: stopped at step ")[1].split()[0] for out in outputs}
    assert len(steps) == 1  # the same step on both workers
    assert os.listdir(os.path.join(run_dir(str(tmp_path)), "interrupted"))

    workers = start_workers(args, str(scratch))
    chiefs.add(workers[0].process.pid)
    codes, outputs = finish(workers)
    assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    for out in outputs:
        assert f"steps into the next epoch" in out and "Resumed from" in out
    assert len(set(digests(outputs))) == 1
    written = assert_only_the_chief_wrote(str(tmp_path), str(scratch), chiefs)
    run = os.path.relpath(run_dir(str(tmp_path)), tmp_path)
    assert os.path.join(run, "checkpoints", "ckpt-2.index") in written
    assert not any("interrupted" in f for f in written)
    generated = [f for f in written if f.startswith("generated")]
    assert sorted(os.path.basename(f) for f in generated) == [
        "epoch_001_t0.75.wav", "epoch_002_t0.75.wav"]


def test_musicvae_two_workers_train_to_the_end_and_resume(tmp_path):
    scratch = tmp_path.parent / f"{tmp_path.name}-scratch"
    workers = start_workers(musicvae_args(str(tmp_path), 8, 4), str(scratch))
    chiefs = {workers[0].process.pid}
    codes, outputs = finish(workers)
    assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    first = digests(outputs)
    assert len(set(first)) == 1
    workers = start_workers(musicvae_args(str(tmp_path), 12, 4), str(scratch))
    chiefs.add(workers[0].process.pid)
    codes, outputs = finish(workers)
    assert codes == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert all("Resumed from" in out and "ckpt-8" in out for out in outputs)
    assert len(set(digests(outputs))) == 1 and digests(outputs) != first
    written = assert_only_the_chief_wrote(str(tmp_path), str(scratch), chiefs)
    run = os.path.relpath(run_dir(str(tmp_path)), tmp_path)
    assert {os.path.join(run, "checkpoints", "ckpt-12.index"),
            os.path.join(run, "best", "checkpoint")} <= set(written)


def test_a_worker_that_dies_stops_the_other_with_a_clear_error(tmp_path):
    scratch = tmp_path.parent / f"{tmp_path.name}-scratch"
    workers = start_workers(samplernn_args(str(tmp_path), 3, "--generate", "false"),
                            str(scratch))
    assert workers[1].wait_for(r"epoch 1 step", LIMIT), workers[1].finish(LIMIT)[1][-3000:]
    workers[1].process.kill()
    code, out = workers[0].finish(60)
    assert code == 1, out[-3000:]
    assert "error: another worker of the cluster stopped or cannot be reached" in out
    assert "start every worker again with the same command" in out
