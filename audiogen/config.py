"""Model configuration: read a `*.config.json`, fill defaults, validate, save, compare.

A config is a JSON object. Its `"model"` key picks the model (`"samplernn"` when absent, so the
classic `default.config.json` works as is). Every other key must be one of that model's keys
below; nested objects (MusicVAE's `*_params`, `*_settings`) are validated key by key. Errors are
raised as `ConfigError` with one message that names the file, the key and what was expected.
"""
import copy
import difflib
import json
import os
import warnings

from audiogen.files import atomic_path
from audiogen.midi.encoding import STEPS_PER_BAR
from audiogen.midi.meters import normalize_setting

CONFIG_SUFFIX = ".config.json"
RESOLVED_CONFIG_NAME = "resolved.config.json"
MODELS = ("samplernn", "musicvae")
# float32, or bfloat16 / float16 matrix products with float32 variables, states and loss
# (`audiogen.precision`; float16 with loss scaling).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

# PRiSM SampleRNN's model table, exactly (also the content of default.config.json).
SAMPLERNN_PRISM_DEFAULTS = {
    "seq_len": 1024,
    "frame_sizes": [16, 64],
    "dim": 1024,
    "rnn_type": "gru",
    "num_rnn_layers": 4,
    "q_type": "mu-law",
    "q_levels": 256,
    "emb_size": 256,
    "skip_conn": False,
}
# Keys beyond PRiSM's table, with defaults that keep PRiSM's behaviour.
SAMPLERNN_EXTRA_DEFAULTS = {
    "piece_dur": 8.0,        # seconds: long files are cut into pieces of this length
    "max_grad_norm": 1.0,    # gradient clipping by global norm; null disables it
    "precision": "float32",  # or mixed_bfloat16 / mixed_float16 products (audiogen.precision)
}

# The config keys of the PyTorch MusicVAE port (symusic). Sizes are those of a flat 2-bar model.
MUSICVAE_SYMUSIC_DEFAULTS = {
    "batch_size": 64,
    "num_workers": 2,
    "train_dir": None,
    "eval_dir": None,
    "slice_bar": 2,
    "ckpt_path": None,
    "z_size": 256,
    "encoder_params": {"embed_size": 32, "hidden_size": 512, "n_layers": 1},
    "use_hier": False,
    "decoder_params": {"embed_size": 32, "hidden_size": 256, "n_layers": 2},
    "n_subsequences": 2,
    "c_size": 256,
    "conductor_params": {"hidden_size": 256, "n_layers": 2},
    "num_steps": 50000,
    "learning_rate": 0.001,
    "lr_scheduler_factor": 0.5,
    "lr_scheduler_patience": 5,
    "sampling_settings": {"schedule": "constant", "rate": 0.0},
    "beta_settings": {"start_beta": 0.0, "end_beta": 0.2, "duration": 20000},
    "free_bits": 48.0,
    "evaluate_interval": 500,
    "advanced_interval": 2000,
    "print_interval": 100,
}
MUSICVAE_EXTRA_DEFAULTS = {
    "max_slices_per_file": 8,   # at most N slices per file (random in training, first N in
                                # eval); null: every window
    "early_stopping_patience": None,  # evaluations without a better val_loss before stopping
    "transpose_range": 0,       # training augmentation: random shift in [-n, n] semitones
    "eval_fraction": 0.1,       # held-out share of train_dir files when eval_dir is null
    "max_grad_norm": 1.0,
    "precision": "float32",     # or mixed_bfloat16 / mixed_float16 LSTM products (precision.py)
    "decay_rate": 1.0,          # learning rate times this after every step (1: no decay)...
    "min_learning_rate": 0.00001,  # ...down to this (Magenta's decay_rate, min_learning_rate)
    "decay_start_step": 0,      # ...after this step (a constant rate before it)
    "meters": None,             # meters besides 16-step bars: ["2/4", "6/8"] or "any" (midi.meters)
}

# Nested keys beyond the port's: the encoder's subsequences (1: one bidirectional LSTM over the
# melody, as in the paper; S > 1: the hierarchical encoder of `audiogen.musicvae.encoder`) and
# the decoder's input dropout in training (`audiogen.musicvae.decoders`).
MUSICVAE_EXTRA_ENCODER_PARAMS = {"n_subsequences": 1}
MUSICVAE_EXTRA_DECODER_PARAMS = {"input_dropout": 0.0}

DEFAULTS = {
    "samplernn": {**SAMPLERNN_PRISM_DEFAULTS, **SAMPLERNN_EXTRA_DEFAULTS},
    "musicvae": {**MUSICVAE_SYMUSIC_DEFAULTS, **MUSICVAE_EXTRA_DEFAULTS,
                 "encoder_params": {**MUSICVAE_SYMUSIC_DEFAULTS["encoder_params"],
                                    **MUSICVAE_EXTRA_ENCODER_PARAMS},
                 "decoder_params": {**MUSICVAE_SYMUSIC_DEFAULTS["decoder_params"],
                                    **MUSICVAE_EXTRA_DECODER_PARAMS}},
}
# Keys whose value may be null, and the type expected otherwise.
NULLABLE = {
    "max_grad_norm": float,
    "max_slices_per_file": int,
    "early_stopping_patience": int,
    "train_dir": str,
    "eval_dir": str,
    "ckpt_path": str,
}
CHOICES = {
    "rnn_type": ("gru", "lstm"),
    "q_type": ("mu-law", "linear"),
    "precision": PRECISIONS,
    "sampling_settings.schedule": ("constant", "inverse_sigmoid"),
}
POSITIVE_INTS = {
    "seq_len", "dim", "num_rnn_layers", "emb_size", "batch_size", "slice_bar", "z_size",
    "n_subsequences", "c_size", "num_steps", "evaluate_interval", "advanced_interval",
    "print_interval", "max_slices_per_file", "num_workers", "lr_scheduler_patience",
    "embed_size", "hidden_size", "n_layers", "early_stopping_patience",
}
# What null means for the nullable positive integers, for their error messages.
NULL_MEANS = {"max_slices_per_file": "every window", "early_stopping_patience": "never stop early"}


class ConfigError(ValueError):
    """A config that cannot be used, with a message naming the file, the key and the fix."""


def load_config(path, require_suffix=True):
    """Read, fill and validate the config file at `path`; returns a new dict."""
    path = os.fspath(path)
    if require_suffix and not os.path.basename(path).endswith(CONFIG_SUFFIX):
        raise ConfigError(
            f"{path}: config file names must match *{CONFIG_SUFFIX} (e.g. default{CONFIG_SUFFIX})")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file: a config is a JSON object in UTF-8 "
                          f"text") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    return resolve_config(raw, source=path)


def resolve_config(raw, source="config"):
    """Fill defaults into the mapping `raw` and validate it; returns a new dict."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a JSON object, got {type(raw).__name__}")
    model = raw.get("model", "samplernn")
    if model not in MODELS:
        raise ConfigError(f"{source}: key 'model' must be one of {list(MODELS)}, got {model!r}")
    config = _merge(DEFAULTS[model], {k: v for k, v in raw.items() if k != "model"}, source, "")
    config["model"] = model
    (_check_samplernn if model == "samplernn" else _check_musicvae)(config, source)
    return config


def save_config(config, run_dir):
    """Write the resolved config into `run_dir` (atomically); returns its path."""
    path = os.path.join(run_dir, RESOLVED_CONFIG_NAME)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    return path


def load_run_config(run_dir):
    """The resolved config saved in a run directory, or None when there is none."""
    path = os.path.join(run_dir, RESOLVED_CONFIG_NAME)
    if not os.path.exists(path):
        return None
    return load_config(path, require_suffix=False)


def config_differences(saved, requested, prefix=""):
    """Dotted names of the keys whose values differ between two resolved configs."""
    keys = sorted(set(saved) | set(requested))
    diffs = []
    for key in keys:
        a, b = saved.get(key), requested.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, prefix + key + ".")
        elif a != b:
            diffs.append(prefix + key)
    return diffs


def describe_differences(saved, requested, keys):
    """'key: saved -> requested' lines for `keys` from `config_differences`."""
    def get(cfg, dotted):
        for part in dotted.split("."):
            cfg = cfg.get(part) if isinstance(cfg, dict) else None
        return cfg
    return [f"{k}: {get(saved, k)!r} -> {get(requested, k)!r}" for k in keys]


def with_overrides(config, overrides):
    """Apply {dotted.key: value} overrides (e.g. from command-line flags) and re-validate."""
    raw = copy.deepcopy(config)
    for dotted, value in overrides.items():
        target = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return resolve_config(raw, source="command-line overrides")


# --- checks -------------------------------------------------------------------------------------

def _merge(defaults, given, source, prefix):
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        name = prefix + key
        if key not in defaults:
            hint = difflib.get_close_matches(key, list(defaults), n=1)
            suggestion = f"; did you mean '{prefix + hint[0]}'?" if hint else ""
            raise ConfigError(f"{source}: unknown key '{name}'{suggestion} "
                              f"(valid keys: {', '.join(sorted(defaults))})")
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: key '{name}' must be an object with keys "
                                  f"{sorted(default)}, got {value!r}")
            merged[key] = _merge(default, value, source, name + ".")
        else:
            merged[key] = _check_type(key, name, value, default, source)
    return merged


def _check_type(key, name, value, default, source):
    if name == "meters":
        try:
            return normalize_setting(value)
        except ValueError as e:
            raise ConfigError(f"{source}: key {e}") from None
    if value is None and key in NULLABLE:
        return None
    expected = NULLABLE.get(key) if default is None else type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is list:
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)
        if not ok or not value:
            raise ConfigError(f"{source}: key '{name}' must be a non-empty list of integers, "
                              f"got {value!r}")
        return list(value)
    null = f" or null ({NULL_MEANS[key]})" if key in NULL_MEANS else ""
    if type(value) is not expected:  # bool is not accepted for int, nor int for bool
        raise ConfigError(f"{source}: key '{name}' must be of type {expected.__name__}{null}, "
                          f"got {type(value).__name__} {value!r}")
    if name in CHOICES and value not in CHOICES[name]:
        raise ConfigError(f"{source}: key '{name}' must be one of {list(CHOICES[name])}, "
                          f"got {value!r}")
    if key in POSITIVE_INTS and value < 1:
        raise ConfigError(f"{source}: key '{name}' must be a positive integer{null}, "
                          f"got {value!r}")
    return value


def _check_samplernn(config, source):
    frames = config["frame_sizes"]
    if any(f < 1 for f in frames):
        raise ConfigError(f"{source}: key 'frame_sizes' must hold positive sizes, got {frames}")
    for lower, upper in zip(frames, frames[1:]):
        if upper <= lower or upper % lower:
            raise ConfigError(
                f"{source}: key 'frame_sizes' must be ascending, each a multiple of the one "
                f"before it; {upper} is not a multiple of {lower} greater than it ({frames})")
    if config["seq_len"] % frames[-1]:
        raise ConfigError(f"{source}: key 'seq_len' ({config['seq_len']}) must be divisible by "
                          f"the top tier frame size ({frames[-1]})")
    if config["q_levels"] < 2:
        raise ConfigError(f"{source}: key 'q_levels' must be at least 2, got {config['q_levels']}")
    if config["q_type"] == "mu-law" and config["q_levels"] != 256:
        warnings.warn(f"{source}: q_type 'mu-law' uses 256 quantization levels; "
                      f"q_levels {config['q_levels']} is ignored", stacklevel=3)
        config["q_levels"] = 256
    if config["piece_dur"] <= 0:
        raise ConfigError(f"{source}: key 'piece_dur' must be positive, got {config['piece_dur']}")
    _check_positive_or_null(config, "max_grad_norm", source)


def _check_musicvae(config, source):
    steps = config["slice_bar"] * STEPS_PER_BAR
    if config["use_hier"] and steps % config["n_subsequences"]:
        raise ConfigError(
            f"{source}: key 'n_subsequences' ({config['n_subsequences']}) must divide the "
            f"sequence length of slice_bar * {STEPS_PER_BAR} = {steps} steps evenly")
    encoder_segments = config["encoder_params"]["n_subsequences"]
    if steps % encoder_segments:
        raise ConfigError(
            f"{source}: key 'encoder_params.n_subsequences' ({encoder_segments}) must divide the "
            f"sequence length of slice_bar * {STEPS_PER_BAR} = {steps} steps evenly "
            f"(1: one bidirectional LSTM over the whole melody)")
    if not 0 <= config["decoder_params"]["input_dropout"] < 1:
        raise ConfigError(f"{source}: key 'decoder_params.input_dropout' must be in [0, 1) (the "
                          f"share of the decoder's inputs dropped in training), got "
                          f"{config['decoder_params']['input_dropout']}")
    beta = config["beta_settings"]
    if beta["duration"] < 0:
        raise ConfigError(f"{source}: key 'beta_settings.duration' must be >= 0")
    if config["sampling_settings"]["rate"] < 0:
        raise ConfigError(f"{source}: key 'sampling_settings.rate' must be >= 0")
    if config["sampling_settings"]["schedule"] == "inverse_sigmoid" and \
            config["sampling_settings"]["rate"] < 1:
        raise ConfigError(f"{source}: key 'sampling_settings.rate' must be >= 1 for the "
                          f"inverse_sigmoid schedule (it is the schedule's k, in steps)")
    if not 0 < config["lr_scheduler_factor"] < 1:
        raise ConfigError(f"{source}: key 'lr_scheduler_factor' must be in (0, 1)")
    if not 0 < config["decay_rate"] <= 1:
        raise ConfigError(f"{source}: key 'decay_rate' must be in (0, 1] (1: no decay), "
                          f"got {config['decay_rate']}")
    if config["min_learning_rate"] < 0:
        raise ConfigError(f"{source}: key 'min_learning_rate' must be >= 0")
    if config["decay_start_step"] < 0:
        raise ConfigError(f"{source}: key 'decay_start_step' must be >= 0 (the step the decay "
                          f"starts after), got {config['decay_start_step']}")
    if config["free_bits"] < 0 or config["transpose_range"] < 0:
        raise ConfigError(f"{source}: keys 'free_bits' and 'transpose_range' must be >= 0")
    if not 0 <= config["eval_fraction"] < 1:
        raise ConfigError(f"{source}: key 'eval_fraction' must be in [0, 1)")
    _check_positive_or_null(config, "max_grad_norm", source)


def _check_positive_or_null(config, key, source):
    if config[key] is not None and config[key] <= 0:
        raise ConfigError(f"{source}: key '{key}' must be positive or null, got {config[key]}")
