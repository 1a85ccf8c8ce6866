"""Cut long recordings into equal WAV pieces.

    python -m audiogen.audio.chunk INPUT... --output_dir D --chunk_dur SECONDS
        [--sample_rate SR] [--drop_silent] [--silence_db -60]

Each INPUT (an audio file, or a directory searched recursively for audio files) is decoded to
mono, resampled when `--sample_rate` is given, and cut into consecutive pieces of `chunk_dur`
seconds written as 16-bit WAV files `<stem>_<index:04d>.wav`, where `index` is the piece's
position in its recording (so the names keep their place even when silent pieces are dropped).
A tail shorter than `chunk_dur` is not written. With `--drop_silent`, a piece is dropped when
even its loudest 2048-sample frame has an RMS level below `--silence_db` dB relative to full
scale (a full-scale square wave is 0 dB, a full-scale sine -3 dB).
"""
import argparse
import os
import sys

import librosa
import numpy as np

from audiogen.audio.io import SUPPORTED_EXTENSIONS, is_supported_path, load_audio, probe_audio, \
    save_wav

RMS_FRAME = 2048
RMS_HOP = 512


def main(argv=None):
    """Run the tool; returns the process exit code (0 on success, 1 on bad input, 2 on bad
    arguments)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse exits after printing usage or --help
        return e.code
    try:
        inputs = _expand_inputs(args.inputs)
        return _chunk_files(inputs, args)
    except (ValueError, OSError) as e:  # UnsupportedAudioError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1


def _chunk_files(inputs, args):
    infos = [probe_audio(path) for path in inputs]  # report unreadable inputs before writing
    total_written = total_dropped = 0
    for path, info in zip(inputs, infos):
        rate = args.sample_rate or info.sample_rate
        chunk_len = int(round(args.chunk_dur * rate))
        if chunk_len < 1:
            raise ValueError(f"--chunk_dur {args.chunk_dur} s is less than one sample at {rate} Hz")
        samples = load_audio(path, rate)
        pieces = cut_pieces(samples, chunk_len)
        stem = os.path.splitext(os.path.basename(path))[0]
        written = dropped = 0
        for index, piece in enumerate(pieces):
            if args.drop_silent and is_silent(piece, args.silence_db):
                dropped += 1
                continue
            save_wav(os.path.join(args.output_dir, f"{stem}_{index:04d}.wav"), piece, rate)
            written += 1
        tail = len(samples) - len(pieces) * chunk_len
        print(f"{path}: wrote {written} pieces of {args.chunk_dur:g} s at {rate} Hz, "
              f"dropped {dropped} silent" + (f", left out a {tail / rate:.3f} s tail" if tail else ""))
        total_written += written
        total_dropped += dropped
    print(f"{len(inputs)} files: wrote {total_written} pieces to {args.output_dir}, "
          f"dropped {total_dropped} silent")
    return 0


def cut_pieces(samples, chunk_len):
    """`[n]` samples -> `[n // chunk_len, chunk_len]` consecutive pieces (the tail is left out)."""
    count = len(samples) // chunk_len
    return np.reshape(samples[:count * chunk_len], (count, chunk_len))


def is_silent(piece, silence_db):
    """True when every `RMS_FRAME`-sample frame of `piece` (`[n]`) is below `silence_db` dBFS."""
    frame = min(RMS_FRAME, len(piece))
    rms = librosa.feature.rms(y=np.asarray(piece, np.float32), frame_length=frame,
                              hop_length=RMS_HOP, center=False)
    return float(np.max(librosa.amplitude_to_db(rms, ref=1.0, top_db=None))) < silence_db


def _expand_inputs(inputs):
    """Files named directly, plus the supported audio files under named directories (sorted);
    ValueError for a missing input or two inputs whose pieces would have the same names."""
    files = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(os.path.join(root, name) for root, _, names in os.walk(item)
                           for name in names if is_supported_path(name))
            if not found:
                raise ValueError(f"{item}: directory holds no audio files "
                                 f"({', '.join(SUPPORTED_EXTENSIONS)})")
            files += found
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise ValueError(f"{item}: no such file or directory")
    stems = {}
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            raise ValueError(f"{stems[stem]} and {path} would both write pieces named "
                             f"{stem}_NNNN.wav; rename one of them")
        stems[stem] = path
    return files


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m audiogen.audio.chunk",
        description="Cut long recordings into equal WAV pieces named <stem>_<index:04d>.wav.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio files (.wav .flac .ogg .mp3) or directories of them")
    parser.add_argument("--output_dir", required=True, help="directory for the pieces")
    parser.add_argument("--chunk_dur", type=_positive_float, required=True,
                        help="piece duration in seconds")
    parser.add_argument("--sample_rate", type=_positive_int, default=None,
                        help="resample to this rate in Hz (default: keep each file's rate)")
    parser.add_argument("--drop_silent", action="store_true",
                        help="leave out pieces whose loudest frame is below --silence_db")
    parser.add_argument("--silence_db", type=float, default=-60.0,
                        help="silence threshold in dB relative to full scale (default: -60)")
    return parser


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
