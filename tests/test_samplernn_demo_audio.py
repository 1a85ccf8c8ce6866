"""A tiny SampleRNN learns something from the real demo audio (piano, data/demo/audio)."""
import os

import keras
import pytest

from audiogen.data.audio_dataset import make_audio_datasets
from audiogen.samplernn.model import SampleRNN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_fit_on_demo_audio_lowers_validation_loss():
    keras.utils.set_random_seed(0)
    data = make_audio_datasets(os.path.join(ROOT, "data", "demo", "audio"), sample_rate=8000,
                               batch_size=4, seq_len=64, top_frame_size=16, piece_dur=0.5,
                               num_val_batches=1)
    model = SampleRNN(frame_sizes=[4, 16], dim=32, num_rnn_layers=1, emb_size=16, seq_len=64)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  steps_per_execution=data.info.windows_per_piece)
    before = model.evaluate(data.validation, return_dict=True, verbose=0)["loss"]
    model.fit(data.train.take(20 * data.info.windows_per_piece), epochs=1, verbose=0)
    after = model.evaluate(data.validation, return_dict=True, verbose=0)
    assert after["loss"] < before - 0.5, (before, after)
    assert after["bits_per_sample"] == pytest.approx(after["loss"] / 0.6931472, rel=1e-4)
