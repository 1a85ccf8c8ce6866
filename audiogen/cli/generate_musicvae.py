"""MusicVAE generation from a checkpoint: sample, interpolate or reconstruct melodies as MIDI,
optionally moved along the run's attribute vectors (`--attribute NAME=AMOUNT`)."""
import os

import numpy as np

from audiogen.cli.args import fail
from audiogen.cli.outputs import numbered_paths, outputs_and_pictures
from audiogen.midi.encoding import STEPS_PER_BAR
from audiogen.midi.context import interpolation_context, reconstruction_context, \
    sampled_context
from audiogen.midi.files import find_melody_slice, write_midi
from audiogen.midi.meters import bar_steps
from audiogen.musicvae.sampler import interpolate, reconstruct, sample
from audiogen.plots import melodies_figure, melody_figure, save_png
from audiogen.temperatures import cycle_temperatures
from audiogen.training.attribute_vectors import vectors_for
from audiogen.training.trained import CheckpointMismatchError, model_from_config, restore_weights


def run(args, config, checkpoint, run_dir):
    num_steps = config["slice_bar"] * STEPS_PER_BAR
    try:
        temperatures = cycle_temperatures(args.temperature, args.num_seqs)
        inputs = [load_source(path, num_steps, config["meters"]) for path in
                  (args.interpolate or ([args.reconstruct] if args.reconstruct else []))]
        if args.interpolate and args.steps < 2:
            raise ValueError(f"--steps must be at least 2 (the endpoints), got {args.steps}")
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    try:
        model = restore_weights(model_from_config(config), checkpoint)
    except CheckpointMismatchError as e:
        return fail(str(e))
    try:
        z_shift = attribute_shift(model, config, run_dir, checkpoint, args.attribute)
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))

    if args.interpolate:
        melodies = np.asarray(interpolate(model, inputs[0].classes, inputs[1].classes, args.steps,
                                          temperature=temperatures[0], rng_seed=args.rng_seed,
                                          z_shift=z_shift))
        contexts, joined_context = interpolation_context(*inputs, args.steps, args.qpm,
                                                         args.program)
        stem, ext = os.path.splitext(args.output_path)
        (*paths, joined), (*pictures, joined_picture) = outputs_and_pictures(
            numbered_paths(args.output_path, len(melodies)) + [f"{stem}_all{ext}"],
            args.overwrite, args.plot)
        write_all(melodies, paths, pictures, contexts)
        write_midi(list(melodies), joined, **joined_context)
        print(f"Wrote {joined} ({args.steps} steps in a row, a marker at each)")
        if joined_picture:
            a, b = (os.path.basename(p) for p in args.interpolate)
            titles = [f"step {i + 1}" for i in range(len(melodies))]
            titles[0], titles[-1] = f"{titles[0]}: {a}", f"{titles[-1]}: {b}"
            write_picture(melodies_figure(melodies, titles, f"Interpolation from {a} to {b}",
                                          steps_per_bar=bar_of(joined_context)), joined_picture)
    elif args.reconstruct:
        melodies = np.asarray(reconstruct(model, inputs[0].classes[None],
                                          temperature=temperatures[0], rng_seed=args.rng_seed,
                                          z_shift=z_shift))
        write_all(melodies, *outputs_and_pictures([args.output_path], args.overwrite, args.plot),
                  [reconstruction_context(inputs[0], args.qpm, args.program)])
    else:
        melodies = np.asarray(sample(model, args.num_seqs, temperatures, rng_seed=args.rng_seed,
                                     z_shift=z_shift))
        write_all(melodies, *outputs_and_pictures(numbered_paths(args.output_path, len(melodies)),
                                                  args.overwrite, args.plot),
                  sampled_context(len(melodies), args.qpm, args.program))
    return 0


def attribute_shift(model, config, run_dir, checkpoint, amounts):
    """The `[z_size]` sum of `amount * vector` of `--attribute` (None without it), from the
    run's attribute vectors (computed and stored first when it has none for `checkpoint`);
    printed."""
    if not amounts:
        return None
    vectors = vectors_for(model, config, run_dir, checkpoint)
    shift = vectors.shift(amounts)
    print(f"Adding attribute vectors to every latent code (|shift| {np.linalg.norm(shift):.3g}):")
    for name, amount in amounts:
        print(f"  {name} {amount:+g}: {vectors.describe(name)}")
    return shift


def load_source(path, num_steps, meters):
    """The window of `path` to encode (`SourceSlice`), under the run's meter rule; printed."""
    source = find_melody_slice(path, num_steps, meters)
    print(f"Using {source.describe()}")
    return source


def write_all(melodies, paths, pictures, contexts):
    """Write each melody with its tempo, program and time signature (`audiogen.midi.context`)."""
    for melody, path, picture, context in zip(melodies, paths, pictures, contexts):
        write_midi(melody, path, **context)
        meter = "/".join(map(str, context["time_signature"]))
        print(f"Wrote {path} ({len(melody)} steps in {meter} at {context['qpm']:g} qpm, "
              f"program {context['program']})")
        if picture:
            write_picture(melody_figure(melody, os.path.basename(path), bar_of(context)),
                          picture)


def bar_of(context):
    """Steps in a bar of the meter a melody is written in: its picture's bar lines."""
    return bar_steps(*context["time_signature"]) or STEPS_PER_BAR


def write_picture(figure, path):
    save_png(figure, path)
    print(f"Wrote {path}")
