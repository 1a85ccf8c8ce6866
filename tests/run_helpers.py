"""Tiny training runs of both models as separate `train.py` processes, for the tests that stop
them (signals, SIGKILL)."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import soundfile as sf
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_MIDI = os.path.join(ROOT, "data", "demo", "midi", "oneills")
RATE = 8000


def audio_corpus(folder):
    """Five 1 s tones at 8 kHz."""
    os.makedirs(folder, exist_ok=True)
    t = np.arange(RATE) / RATE
    for i in range(5):
        sf.write(os.path.join(folder, f"tone{i}.wav"), 0.4 * np.sin(2 * np.pi * (220 + 55 * i) * t),
                 RATE, subtype="PCM_16")
    return folder


def midi_corpus(folder, count=60):
    """The first `count` demo tunes (their held-out quarter has 4/4 ones)."""
    os.makedirs(folder, exist_ok=True)
    for name in sorted(n for n in os.listdir(DEMO_MIDI) if n.endswith(".mid"))[:count]:
        shutil.copy(os.path.join(DEMO_MIDI, name), os.path.join(folder, name))
    return folder


def samplernn_args(folder, epochs, *extra):
    """train.py arguments of a tiny SampleRNN over `audio_corpus(<folder>/audio)`: 144 windows
    an epoch."""
    os.makedirs(folder, exist_ok=True)
    config = os.path.join(folder, "tiny.config.json")
    with open(config, "w") as f:
        json.dump({"seq_len": 64, "frame_sizes": [4, 16], "dim": 16, "num_rnn_layers": 1,
                   "emb_size": 8, "piece_dur": 0.128}, f)
    return ["--data_dir", audio_corpus(os.path.join(folder, "audio")), "--config_file", config,
            "--id", "run", "--logdir_root", os.path.join(folder, "logdir"),
            "--output_dir", os.path.join(folder, "generated"), "--sample_rate", str(RATE),
            "--batch_size", "4", "--num_epochs", str(epochs), "--jit_compile", "false",
            "--output_file_dur", "0.05", *extra]


def musicvae_args(folder, steps, interval, *extra):
    """train.py arguments of a tiny flat MusicVAE over 60 demo tunes."""
    os.makedirs(folder, exist_ok=True)
    config = os.path.join(folder, "tiny.config.json")
    with open(config, "w") as f:
        json.dump({"model": "musicvae", "batch_size": 8, "num_workers": 1,
                   "train_dir": midi_corpus(os.path.join(folder, "midi")), "eval_fraction": 0.25,
                   "z_size": 8, "encoder_params": {"embed_size": 8, "hidden_size": 16},
                   "decoder_params": {"embed_size": 8, "hidden_size": 16, "n_layers": 1},
                   "num_steps": steps, "evaluate_interval": interval, "advanced_interval": 1000,
                   "print_interval": 1}, f)
    return ["--config_file", config, "--id", "run", "--logdir_root",
            os.path.join(folder, "logdir"), *extra]


def run_dir(folder):
    return os.path.join(folder, "logdir", "run")


def checkpoint_numbers(folder, sub="checkpoints"):
    path = os.path.join(run_dir(folder), sub)
    if not os.path.isdir(path):
        return []
    return sorted(int(m.group(1)) for n in os.listdir(path)
                  if (m := re.match(r"ckpt-(\d+)\.index$", n)))


def optimizer_step(checkpoint):
    name = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    return int(tf.train.load_variable(checkpoint, name))


def latest_checkpoint(folder):
    return tf.train.latest_checkpoint(os.path.join(run_dir(folder), "checkpoints"))


class TrainProcess:
    """`train.py args` in a new process; its output lines are collected as they come."""

    def __init__(self, args, env=None):
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
        self.process = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, cwd=ROOT, env=env)
        self.lines = []
        self.cursor = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern, timeout):
        """The next output line matching `pattern`, after the one the previous call returned
        (None when the process ends or times out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self.cursor < len(self.lines):
                line = self.lines[self.cursor]
                self.cursor += 1
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None:
                self.reader.join(1)
                if self.cursor >= len(self.lines):
                    return None
            time.sleep(0.05)
        return None

    def finish(self, timeout):
        """Wait for the end; returns the exit code and the whole output."""
        code = self.process.wait(timeout)
        self.reader.join(5)
        return code, "".join(self.lines)
