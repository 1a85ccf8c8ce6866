"""The pieces of a distributed run that need no second device: the cluster settings and their
errors, how a global batch is split, how files are dealt to workers and batches to replicas."""
import json

import numpy as np
import pytest
import tensorflow as tf

from audiogen.data.audio_dataset import _FileTable, _shard_files
from audiogen.data.replicas import InputShard, split_for_replicas
from audiogen.training.distribution import Cluster, make_cluster


@pytest.mark.parametrize("tf_config, message", [
    (None, "reads the cluster from the TF_CONFIG environment variable, which is not set"),
    ("{not json", "TF_CONFIG is not a cluster description"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "TF_CONFIG is not a cluster description"),
    (json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}),
     "task 'worker' 2 is not in the cluster"),
    (json.dumps({"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}),
     "multi_worker trains with 'chief' and 'worker' tasks"),
])
def test_a_bad_cluster_description_is_a_clear_error(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        make_cluster("multi_worker")


def test_an_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="--strategy must be one of"):
        make_cluster("parameter_server")


def test_the_global_batch_must_divide_over_the_replicas():
    cluster = Cluster(strategy=object(), worker_index=1, num_workers=2, local_replicas=2,
                      is_chief=False)
    assert cluster.shard(8) == InputShard(index=1, count=2, local_replicas=2, replica_batch=2)
    assert cluster.shard(8).first_row == 4 and cluster.shard(8).pipeline_batch == 4
    with pytest.raises(ValueError, match=r"--batch_size 10 .* 4 replicas .* multiple of 4"):
        cluster.shard(10)
    assert Cluster().shard(10) is None  # one device: no split


def test_files_are_dealt_to_workers_balanced_by_training_pieces():
    pieces = [9, 1, 4, 4, 2, 0]  # the last file holds only validation pieces
    firsts = list(np.cumsum([0] + pieces[:-1]))
    table = _FileTable(paths=[f"f{i}" for i in range(6)], format_ids=[0] * 6, rates=[1] * 6,
                       num_samples=[1] * 6, num_pieces=[max(p, 1) for p in pieces],
                       first_piece=firsts)
    is_train = np.ones(sum(max(p, 1) for p in pieces), bool)
    is_train[firsts[5]] = False
    shares = [_shard_files("data", table, is_train, InputShard(index=i, count=2))
              for i in range(2)]
    assert sorted(shares[0] + shares[1]) == [0, 1, 2, 3, 4]  # each file once, none empty
    loads = [sum(pieces[r] for r in share) for share in shares]
    assert sorted(loads) == [10, 10]
    with pytest.raises(ValueError, match="5 files of training audio for 6 workers"):
        _shard_files("data", table, is_train, InputShard(index=5, count=6))


def test_a_pipeline_hands_each_replica_its_rows_in_turn():
    rows = tf.data.Dataset.from_tensor_slices(np.arange(22)).batch(8)  # 8, 8 and 6 rows
    shard = InputShard(index=1, count=2, local_replicas=2, replica_batch=2)
    parts = [tuple(x.numpy()) for (x,) in split_for_replicas(rows.map(lambda x: (x,)), shard,
                                                             shard.first_row)]
    # Worker 1's replicas get rows 4-5 and 6-7 of each global batch of 8; of the last batch
    # (6 rows) replica 0 gets 4-5 and replica 1 none.
    assert parts == [(4, 5), (6, 7), (12, 13), (14, 15), (20, 21), ()]
