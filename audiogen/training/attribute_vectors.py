"""A MusicVAE run's attribute vectors: from the slices it trained on, stored in its directory.

The vectors (`audiogen.musicvae.attribute_vectors`) are computed from the run's own training
slices, extracted exactly as its training extracted them (`training_slices`: the same files,
the held-out split, `meters`, `max_slices_per_file`; usually straight from the extraction
cache), and written to `<run>/attribute_vectors.json` with the checkpoint they belong to.

When: at the end of a training run, with its final checkpoint, on the chief
(`final_checkpoint_hook`, hooked in by `MusicVAETask.on_checkpoint`); by `generate.py
--attribute` for a run that has none or has those of another checkpoint (`vectors_for`); and
on request: `python -m audiogen.cli.attribute_vectors RUN_DIR`.
"""
import math
import os

from audiogen.data.melody_dataset import hold_out_files
from audiogen.midi.corpus import extract_corpus, list_midi_files
from audiogen.musicvae.attribute_vectors import DEFAULT_MAX_SLICES, FILE_NAME, compute, load

COMMAND = "python -m audiogen.cli.attribute_vectors"


def training_slices(config):
    """int32 `[n, slice_bar * 16]`: the slices of the run's training files (see the module).

    Raises FileNotFoundError / ValueError naming `train_dir` when they cannot be extracted.
    """
    train_dir = config.get("train_dir")
    if not train_dir:
        raise ValueError("attribute vectors are computed from the run's training data, and its "
                         "config has no train_dir: pass --config_file with one")
    if not os.path.isdir(train_dir):
        raise FileNotFoundError(
            f"attribute vectors are computed from the run's training data, and its train_dir "
            f"{train_dir} is not a folder here (a relative path is read from the current "
            f"folder): run from where training ran, or pass --config_file with its train_dir")
    files = None
    if config.get("eval_dir") is None:
        files, _ = hold_out_files(list_midi_files(train_dir), config["eval_fraction"])
    # seed 0 and training=True as `MusicVAETask.datasets`: the same per-file subsets and cache.
    slices, _ = extract_corpus(train_dir, config["slice_bar"], config["max_slices_per_file"],
                               training=True, seed=0, num_workers=config["num_workers"],
                               files=files, meters=config.get("meters"))
    return slices


def checkpoint_name(checkpoint, run_dir):
    """`checkpoint` relative to `run_dir` (`checkpoints/ckpt-200`), or as given when outside."""
    relative = os.path.relpath(os.path.abspath(checkpoint), os.path.abspath(run_dir))
    return checkpoint if relative.startswith("..") else relative.replace(os.sep, "/")


def compute_for_run(model, config, run_dir, checkpoint, max_slices=DEFAULT_MAX_SLICES):
    """Compute the vectors of `checkpoint` (whose weights `model` holds) from the run's training
    slices and store them in `run_dir`; returns the `AttributeVectors` (printed)."""
    slices = training_slices(config)
    used = len(slices) if max_slices is None else min(len(slices), max_slices)
    print(f"Computing attribute vectors with {checkpoint_name(checkpoint, run_dir)} from {used} "
          f"of the {len(slices)} training slices of {config['train_dir']}")
    vectors = compute(model, slices, checkpoint_name(checkpoint, run_dir), max_slices)
    try:
        print(f"Wrote {vectors.save(run_dir)}")
    except OSError as e:
        # A read-only run (a shipped model) can still be generated from.
        print(f"warning: could not store the attribute vectors in {run_dir} ({e.strerror or e}); "
              f"they are used this once")
    return vectors


def vectors_for(model, config, run_dir, checkpoint):
    """The run's stored vectors when `checkpoint` computed them, else computed now and stored
    (and said so). Raises ValueError / FileNotFoundError with a clear message."""
    stored = load(run_dir)
    name = checkpoint_name(checkpoint, run_dir)
    if stored is not None and stored.checkpoint == name and stored.z_size == model.z_size:
        return stored
    if stored is None:
        print(f"{run_dir} has no {FILE_NAME} yet: computing the attribute vectors now")
    else:
        print(f"{os.path.join(run_dir, FILE_NAME)} holds the vectors of {stored.checkpoint}: "
              f"computing those of {name} now")
    return compute_for_run(model, config, run_dir, checkpoint)


def final_checkpoint_hook(config, run):
    """`MusicVAETask.on_checkpoint`'s hooks: on the chief, compute the vectors when the final
    checkpoint of the run (`num_steps` rounded up to `evaluate_interval`) is saved. A failure
    is printed, not raised: the training it follows has succeeded."""
    if not run.cluster.is_chief:
        return []
    interval = config["evaluate_interval"]
    final = math.ceil(config["num_steps"] / interval) * interval

    def hook(number, path):
        if number == final:
            compute_after_training(config, run, path)

    return [hook]


def compute_after_training(config, run, path):
    """Compute the vectors of `path` (the run's last checkpoint, whose weights `run.model`
    holds), printing rather than raising a failure: the training it follows has succeeded."""
    try:
        compute_for_run(run.model, config, run.run_dir, path)
    except (ValueError, OSError) as e:
        print(f"Attribute vectors not computed: {e}. Compute them later with: "
              f"{COMMAND} {run.run_dir}")
