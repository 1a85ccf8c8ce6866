"""MusicVAE generation from a checkpoint: sample, interpolate or reconstruct melodies as MIDI."""
import os

import numpy as np

from audiogen.cli.args import fail
from audiogen.cli.outputs import numbered_paths, output_paths
from audiogen.midi.encoding import STEPS_PER_BAR
from audiogen.midi.files import first_melody_slice, write_midi
from audiogen.musicvae.sampler import interpolate, reconstruct, sample
from audiogen.temperatures import cycle_temperatures
from audiogen.training.trained import CheckpointMismatchError, model_from_config, restore_weights


def run(args, config, checkpoint, run_dir):
    num_steps = config["slice_bar"] * STEPS_PER_BAR
    try:
        temperatures = cycle_temperatures(args.temperature, args.num_seqs)
        inputs = [load_melody(path, num_steps) for path in
                  (args.interpolate or ([args.reconstruct] if args.reconstruct else []))]
        if args.interpolate and args.steps < 2:
            raise ValueError(f"--steps must be at least 2 (the endpoints), got {args.steps}")
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    try:
        model = restore_weights(model_from_config(config), checkpoint)
    except CheckpointMismatchError as e:
        return fail(str(e))

    if args.interpolate:
        melodies = np.asarray(interpolate(model, inputs[0], inputs[1], args.steps,
                                          temperature=temperatures[0], rng_seed=args.rng_seed))
        stem, ext = os.path.splitext(args.output_path)
        *paths, joined = output_paths(numbered_paths(args.output_path, len(melodies))
                                      + [f"{stem}_all{ext}"], args.overwrite)
        write_all(melodies, paths, args.qpm)
        write_midi(melodies.reshape(-1), joined, qpm=args.qpm)
        print(f"Wrote {joined} ({args.steps} steps in a row)")
    elif args.reconstruct:
        melodies = np.asarray(reconstruct(model, inputs[0][None], temperature=temperatures[0],
                                          rng_seed=args.rng_seed))
        write_all(melodies, output_paths([args.output_path], args.overwrite), args.qpm)
    else:
        melodies = np.asarray(sample(model, args.num_seqs, temperatures, rng_seed=args.rng_seed))
        write_all(melodies, output_paths(numbered_paths(args.output_path, len(melodies)),
                                         args.overwrite), args.qpm)
    return 0


def load_melody(path, num_steps):
    melody, message = first_melody_slice(path, num_steps)
    print(message)
    return melody


def write_all(melodies, paths, qpm):
    bars = melodies.shape[1] // STEPS_PER_BAR
    for melody, path in zip(melodies, paths):
        write_midi(melody, path, qpm=qpm)
        print(f"Wrote {path} ({bars} bars at {qpm:g} qpm)")
