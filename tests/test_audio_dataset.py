import numpy as np
import pytest
import tensorflow as tf

from audio_fixtures import peak_frequency, sine, write_audio, write_positions
from audiogen.audio.quantize import dequantize
from audiogen.data import make_audio_datasets

# Files whose 16-bit samples are their positions; with linear quantization over 65537 levels a
# sample v becomes level 32768 + v exactly, and silence (0.0) becomes 32768.
RATE, SEQ, TOP, PIECE = 1000, 16, 4, 64
LAYOUT = dict(sample_rate=RATE, batch_size=2, seq_len=SEQ, top_frame_size=TOP,
              q_type="linear", q_levels=65537, piece_dur=PIECE / RATE)
SILENCE = 32768


def positions(first, count, pad=0):
    return tuple(range(first, first + count)) + (0,) * pad


# Every piece the corpus below must produce (values = sample positions, 0 = silence).
EXPECTED = {
    # a.wav: 4 whole pieces and a 20-sample tail, which gives the file's last piece (its last
    # 64 samples, overlapping the 4th)
    *(positions(1 + PIECE * k, PIECE) for k in range(4)), positions(4 * PIECE + 21 - PIECE, PIECE),
    # sub/b.wav: 2 whole pieces; its 10-sample tail is shorter than seq_len and dropped
    positions(1001, PIECE), positions(1065, PIECE),
    # c.WAV: shorter than a piece, padded with silence at its end
    positions(2001, 40, pad=24),
    # empty.wav: one piece of silence
    (0,) * PIECE,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_positions(root / "a.wav", 1, 4 * PIECE + 20, RATE)
    write_positions(root / "sub" / "b.wav", 1001, 2 * PIECE + 10, RATE)
    write_positions(root / "c.WAV", 2001, 40, RATE)
    write_positions(root / "empty.wav", 0, 0, RATE)
    (root / "broken.wav").write_bytes(b"RIFF....not a wave file")
    (root / "notes.txt").write_text("not audio, not looked at")
    return root


@pytest.fixture(scope="module")
def layout(corpus):
    with pytest.warns(UserWarning) as record:
        data = make_audio_datasets(corpus, **LAYOUT)
    return data, [str(w.message) for w in record]


def walk(dataset, batch_size, windows_per_piece):
    """Check the window layout of one epoch and return its pieces (tuples of positions)."""
    pieces, resets, windows = [], [], []
    for x, reset in dataset:
        assert x.dtype == tf.int32 and x.shape == (batch_size, SEQ + TOP)
        assert reset.shape == (batch_size,) and len(set(reset.numpy())) == 1  # per row
        resets.append(bool(reset[0]))
        windows.append(x.numpy())
        if len(windows) == windows_per_piece:
            for earlier, later in zip(windows, windows[1:]):  # overlap by the top frame
                np.testing.assert_array_equal(later[:, :TOP], earlier[:, SEQ:])
            padded = np.concatenate([windows[0]] + [w[:, TOP:] for w in windows[1:]], axis=1)
            assert np.all(padded[:, :TOP] == SILENCE)
            pieces += [tuple(row - SILENCE) for row in padded[:, TOP:]]
            windows = []
    assert windows == [] and resets == [True, False, False, False] * (len(resets) // 4)
    return pieces


def test_windows_are_consecutive_overlapping_and_reset_at_each_batch(layout):
    data, _ = layout
    info = data.info
    assert (info.piece_len, info.windows_per_piece) == (PIECE, PIECE // SEQ)
    assert (info.num_train_pieces, info.num_val_pieces, info.num_dropped_pieces) == (7, 2, 1)
    assert (info.train_steps, info.val_steps) == (3 * 4, 1 * 4)
    assert int(data.train.cardinality()) == info.train_steps
    assert int(data.validation.cardinality()) == info.val_steps

    val = walk(data.validation, 2, 4)
    train = walk(data.train, 2, 4)
    assert len(val) == 2 and len(train) == 6
    assert set(val) | set(train) <= EXPECTED
    assert len(set(val) | set(train)) == 8 and not set(val) & set(train)
    # The next epoch is reshuffled but draws from the same training pieces.
    assert set(walk(data.train, 2, 4)) <= EXPECTED - set(val)


def test_validation_split_is_stable_across_calls_and_seeds(corpus, layout):
    data, _ = layout
    with pytest.warns(UserWarning):
        again = make_audio_datasets(corpus, **LAYOUT, seed=123)
    assert walk(again.validation, 2, 4) == walk(data.validation, 2, 4)


def test_skipped_files_and_left_out_pieces_are_warned_once(corpus, layout):
    data, messages = layout
    assert len(messages) == 2
    assert "skipped 1 of 5 audio files" in messages[0] and "broken.wav" in messages[0]
    assert "1 of 7 training pieces are left out" in messages[1]
    assert [path for path, _ in data.info.skipped_files] == [str(corpus / "broken.wav")]
    assert len(data.info.files) == 4


def test_no_validation(corpus):
    with pytest.warns(UserWarning, match="skipped"):
        data = make_audio_datasets(corpus, **{**LAYOUT, "batch_size": 3}, num_val_batches=0)
    assert data.validation is None
    assert (data.info.num_train_pieces, data.info.train_steps) == (9, 12)


def test_44k_file_is_resampled_to_the_training_rate(tmp_path):
    write_audio(tmp_path / "tone.wav", sine(1000, 44100, 11025), 44100)  # 0.25 s
    data = make_audio_datasets(tmp_path, sample_rate=16000, batch_size=1, seq_len=64,
                               top_frame_size=16, piece_dur=0.064)
    info = data.info
    # 4000 samples at 16 kHz: 3 pieces of 1024 and a 928-sample tail.
    assert info.piece_len == 1024 and info.num_train_pieces + info.num_val_pieces == 4
    windows = [x.numpy()[0, 16:] for x, _ in data.train]
    pieces = np.reshape(windows, [info.num_train_pieces, 1024])
    for piece in pieces:  # the last one overlaps the third: no silence anywhere
        assert abs(peak_frequency(dequantize(piece).numpy(), 16000) - 1000) < 16


def test_empty_or_missing_directory_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"holds no readable audio files \(\.wav, \.flac"):
        make_audio_datasets(tmp_path, **LAYOUT)
    with pytest.raises(ValueError, match="is not a directory"):
        make_audio_datasets(tmp_path / "nope", **LAYOUT)
    (tmp_path / "bad.mp3").write_bytes(b"no")
    with pytest.warns(UserWarning, match="bad.mp3"), \
            pytest.raises(ValueError, match="1 found, none readable"):
        make_audio_datasets(tmp_path, **LAYOUT)


def test_too_little_audio_is_an_error(tmp_path):
    write_positions(tmp_path / "one.wav", 1, PIECE + 6, RATE)  # 1 piece and a dropped tail
    with pytest.raises(ValueError, match="give 1 pieces .* but 4 are needed"):
        make_audio_datasets(tmp_path, **LAYOUT)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="seq_len must be a positive integer"):
        make_audio_datasets(tmp_path, **{**LAYOUT, "seq_len": 0})
    with pytest.raises(ValueError, match="piece_dur must be positive"):
        make_audio_datasets(tmp_path, **{**LAYOUT, "piece_dur": 0})


def test_silence_at_a_files_ends_is_left_out_and_its_pieces_spread_over_the_rest(tmp_path):
    """100 samples of silence, 150 of sound, 200 of silence: the header promises 7 pieces of
    64; what is left after trimming gives them as 7 overlapping pieces of sound, first to
    last."""
    values = np.concatenate([np.zeros(100), 1 + np.arange(150), np.zeros(200)]).astype(np.int16)
    write_audio(tmp_path / "quiet_ends.wav", values, RATE, subtype="PCM_16")
    write_positions(tmp_path / "other.wav", 5001, 3 * PIECE, RATE)
    data = make_audio_datasets(tmp_path, **{**LAYOUT, "batch_size": 1, "num_val_batches": 0})
    pieces = set(walk(data.train, 1, PIECE // SEQ))
    trimmed = sorted(p for p in pieces if p[0] < 5001)
    assert len(trimmed) == 7
    assert trimmed[0] == tuple(range(1, 65)) and trimmed[-1] == tuple(range(87, 151))
    assert all(p == tuple(range(p[0], p[0] + PIECE)) for p in trimmed)  # no silence inside
