"""Loading never executes code from a file, and nothing opens a network connection."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from audiogen.config import ConfigError, load_config, load_run_config
from audiogen.midi.corpus import extract_corpus
from audiogen.midi.corpus_cache import cache_path, corpus_cache_key, default_cache_dir
from run_helpers import ROOT, midi_corpus, musicvae_args, run_dir, samplernn_args

pytestmark = pytest.mark.slow


class Payload:
    """Unpickling this creates the file `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_configs_and_caches_do_not_run_code(tmp_path):
    marker = str(tmp_path / "executed")
    crafted = pickle.dumps(Payload(marker))
    config = tmp_path / "evil.config.json"
    config.write_bytes(crafted)
    with pytest.raises(ConfigError, match="evil.config.json"):
        load_config(str(config))
    run = tmp_path / "run"
    run.mkdir()
    (run / "resolved.config.json").write_bytes(crafted)
    with pytest.raises(ConfigError):
        load_run_config(str(run))
    # a melody cache entry holding a pickled object is ignored, not loaded
    midi = midi_corpus(str(tmp_path / "midi"), count=20)
    names = sorted(os.listdir(midi))
    key = corpus_cache_key(midi, [n for n in names if n.endswith(".mid")], slice_bar=2,
                           max_slices_per_file=8, training=True, seed=0)
    cache = cache_path(default_cache_dir(midi), key, 2, True)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    np.savez(cache, slices=np.array([Payload(marker)], dtype=object),
             report=np.array([Payload(marker)], dtype=object))
    with pytest.warns(UserWarning, match="ignoring unreadable melody cache"):
        slices, report = extract_corpus(midi, 2, 8)
    assert len(slices) and not report.from_cache
    assert not os.path.exists(marker)


NO_NETWORK = """
import runpy, socket, sys
class NoNetwork(socket.socket):
    def connect(self, *args):
        raise OSError("audiogen tried to open a network connection: " + repr(args))
    connect_ex = connect
socket.socket = NoNetwork
def no_dns(*args, **kwargs):
    raise OSError("audiogen tried to resolve a host name: " + repr(args))
socket.getaddrinfo = socket.create_connection = no_dns
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_training_and_generation_open_no_network_connection(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    wrapper = tmp_path / "no_network.py"
    wrapper.write_text(NO_NETWORK)

    def run(script, *args):
        done = subprocess.run([sys.executable, str(wrapper), os.path.join(ROOT, script), *args],
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "network" not in done.stderr, done.stderr[-2000:]

    sr, mv = str(tmp_path / "samplernn"), str(tmp_path / "musicvae")
    run("train.py", *samplernn_args(sr, 1, "--steps_per_epoch", "16", "--verbose", "false"))
    run("generate.py", "--checkpoint_path", run_dir(sr), "--output_path",
        str(tmp_path / "a.wav"), "--dur", "0.05", "--rng_seed", "1")
    run("train.py", *musicvae_args(mv, 10, 10))
    run("generate.py", "--checkpoint_path", run_dir(mv), "--output_path",
        str(tmp_path / "m.mid"), "--rng_seed", "1")
