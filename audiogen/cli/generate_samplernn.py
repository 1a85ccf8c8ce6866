"""SampleRNN generation from a checkpoint: all sequences at once, with a progress line."""
import os

import numpy as np

from audiogen.audio.io import save_wav
from audiogen.audio.prime import load_prime_levels, parse_offset
from audiogen.audio.quantize import dequantize
from audiogen.cli.args import fail
from audiogen.cli.outputs import numbered_paths, outputs_and_pictures
from audiogen.plots import audio_figure, save_png
from audiogen.progress import ProgressLine
from audiogen.samplernn.sampler import (
    choose_engine, generate, generation_groups, set_generation_threads)
from audiogen.temperatures import cycle_temperatures
from audiogen.training.checkpoints import load_training_args
from audiogen.training.trained import CheckpointMismatchError, model_from_config, restore_weights

FALLBACK_SAMPLE_RATE = 44100  # PRiSM's generate.py default, for runs without training.json


def run(args, config, checkpoint, run_dir):
    engine, groups = _engine_and_groups(config, args.num_seqs)
    trained_rate = load_training_args(run_dir).get("sample_rate")
    model_rate = trained_rate or args.sample_rate or FALLBACK_SAMPLE_RATE
    header_rate = args.sample_rate or model_rate
    try:
        temperatures = cycle_temperatures(args.temperature, args.num_seqs)
        prime_levels = None
        if args.seed:
            offset = parse_offset(args.seed_offset, model_rate)
            prime = load_prime_levels(args.seed, offset, model_rate,
                                      int(round(args.seed_dur * model_rate)),
                                      config["q_type"], config["q_levels"])
            prime_levels = np.tile(prime[None], (args.num_seqs, 1))
            print(f"Priming with {len(prime)} samples of {args.seed} from sample {offset}")
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e))
    if trained_rate and header_rate != trained_rate:
        print(f"Note: the model was trained at {trained_rate} Hz; writing a {header_rate} Hz "
              f"header changes only playback speed and pitch, not the content.")

    try:
        model = restore_weights(model_from_config(config), checkpoint)
    except CheckpointMismatchError as e:
        return fail(str(e))
    num_samples = int(round(args.dur * model_rate))
    print(f"Generating {args.num_seqs} x {num_samples} samples ({engine} engine"
          + (f", {groups} groups of sequences at once)" if groups > 1 else ")"))
    levels = generate(model, num_samples, temperatures, prime_levels=prime_levels,
                      rng_seed=args.rng_seed, engine=engine, groups=groups,
                      progress=ProgressLine("Generating", "samples").update)
    audio = dequantize(levels, config["q_type"], config["q_levels"]).numpy()
    paths, pictures = outputs_and_pictures(numbered_paths(args.output_path, len(audio)),
                                           args.overwrite, args.plot)
    for path, picture, samples, temperature in zip(paths, pictures, audio, temperatures):
        save_wav(path, samples, header_rate)
        print(f"Wrote {path} ({len(samples) / model_rate:.2f} s, temperature {temperature:g})")
        if picture:
            title = f"{os.path.basename(path)}: temperature {temperature:g}"
            save_png(audio_figure(samples, header_rate, title), picture)
            print(f"Wrote {picture}")
    return 0


def _engine_and_groups(config, num_seqs):
    """The sampler's engine and concurrent groups for this run, with TensorFlow's threads set
    for the engine (`set_generation_threads`). Decided before TensorFlow runs its first op (the
    thread settings cannot change after it); where it already runs with other threads (`main`
    called again in one process), one group."""
    engine = choose_engine(config["dim"], precision=config["precision"])
    if not set_generation_threads(engine):
        return engine, 1
    return engine, generation_groups(num_seqs, engine)
