import json
import os

import pytest

from audiogen.config import (
    SAMPLERNN_PRISM_DEFAULTS, ConfigError, config_differences, describe_differences, load_config,
    load_run_config, resolve_config, save_config, with_overrides)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(tmp_path, content, name="x.config.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_default_config_file_holds_exactly_the_seed_defaults():
    with open(os.path.join(ROOT, "default.config.json")) as f:
        assert json.load(f) == SAMPLERNN_PRISM_DEFAULTS
    config = load_config(os.path.join(ROOT, "default.config.json"))
    assert config["model"] == "samplernn"
    assert config["frame_sizes"] == [16, 64] and config["dim"] == 1024


def test_empty_config_gets_seed_defaults(tmp_path):
    config = load_config(write(tmp_path, {}))
    for key, value in SAMPLERNN_PRISM_DEFAULTS.items():
        assert config[key] == value
    assert config["piece_dur"] == 8.0


def test_all_shipped_configs_load():
    folder = os.path.join(ROOT, "configs")
    names = [n for n in os.listdir(folder) if n.endswith(".config.json")]
    assert names
    for name in names:
        load_config(os.path.join(folder, name))


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "dim": 16,\n  "seq_len": ,\n}')
    with pytest.raises(ConfigError, match=r"x\.config\.json: not valid JSON at line 3, column 14"):
        load_config(path)


def test_name_must_match_pattern(tmp_path):
    with pytest.raises(ConfigError, match=r"must match \*\.config\.json"):
        load_config(write(tmp_path, {}, name="model.json"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.config.json")


def test_unknown_key_suggests_closest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'frame_size'; did you mean 'frame_sizes'\?"):
        load_config(write(tmp_path, {"frame_size": [16, 64]}))


def test_unknown_nested_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"'encoder_params.hiden_size'; did you mean "
                                          r"'encoder_params.hidden_size'"):
        resolve_config({"model": "musicvae", "encoder_params": {"hiden_size": 8}})


@pytest.mark.parametrize("key,value,expected", [
    ("dim", "1024", "must be of type int, got str"),
    ("skip_conn", 1, "must be of type bool, got int"),
    ("seq_len", True, "must be of type int, got bool"),
    ("frame_sizes", [16, "64"], "must be a non-empty list of integers"),
    ("frame_sizes", 16, "must be a non-empty list of integers"),
    ("dim", 0, "must be a positive integer"),
    ("precision", "bfloat16", r"must be one of \['float32', 'mixed_bfloat16', 'mixed_float16'\]"),
])
def test_wrong_types(key, value, expected):
    with pytest.raises(ConfigError, match=f"'{key}' {expected}"):
        resolve_config({key: value})


def test_seq_len_must_divide_by_top_frame():
    with pytest.raises(ConfigError, match=r"'seq_len' \(1000\) must be divisible by the top tier "
                                          r"frame size \(64\)"):
        resolve_config({"seq_len": 1000})


@pytest.mark.parametrize("frames", [[16, 40], [64, 16], [16, 16]])
def test_upper_frame_must_be_multiple_of_lower(frames):
    with pytest.raises(ConfigError, match="'frame_sizes' must be ascending, each a multiple"):
        resolve_config({"frame_sizes": frames, "seq_len": 640})


def test_three_tier_frames_are_valid():
    assert resolve_config({"frame_sizes": [4, 16, 64]})["frame_sizes"] == [4, 16, 64]


def test_q_levels_at_least_two():
    with pytest.raises(ConfigError, match="'q_levels' must be at least 2"):
        resolve_config({"q_type": "linear", "q_levels": 1})


def test_rnn_type_choices():
    with pytest.raises(ConfigError, match=r"'rnn_type' must be one of \['gru', 'lstm'\]"):
        resolve_config({"rnn_type": "rnn"})


def test_mu_law_forces_256_levels_and_says_so():
    with pytest.warns(UserWarning, match="mu-law' uses 256 quantization levels; q_levels 64"):
        config = resolve_config({"q_type": "mu-law", "q_levels": 64})
    assert config["q_levels"] == 256
    assert resolve_config({"q_type": "linear", "q_levels": 64})["q_levels"] == 64


def test_model_key_selects_model():
    config = resolve_config({"model": "musicvae", "slice_bar": 16, "use_hier": True,
                             "n_subsequences": 16})
    assert config["model"] == "musicvae"
    assert config["encoder_params"]["n_layers"] == 1  # nested default filled
    assert config["precision"] == "float32"
    with pytest.raises(ConfigError, match="key 'model' must be one of"):
        resolve_config({"model": "wavenet"})
    with pytest.raises(ConfigError, match=r"'precision' must be one of"):
        resolve_config({"model": "musicvae", "precision": "float16"})


def test_musicvae_subsequences_must_divide_length():
    with pytest.raises(ConfigError, match=r"'n_subsequences' \(3\) must divide the sequence "
                                          r"length of slice_bar \* 16 = 32 steps"):
        resolve_config({"model": "musicvae", "use_hier": True, "n_subsequences": 3})
    with pytest.raises(ConfigError, match=r"'encoder_params.n_subsequences' \(3\) must divide "):
        resolve_config({"model": "musicvae", "encoder_params": {"n_subsequences": 3}})
    config = resolve_config({"model": "musicvae", "encoder_params": {"n_subsequences": 2}})
    assert config["encoder_params"] == {"embed_size": 32, "hidden_size": 512, "n_layers": 1,
                                        "n_subsequences": 2}


def test_musicvae_nullable_and_choices():
    config = resolve_config({"model": "musicvae", "eval_dir": None, "train_dir": "x"})
    assert config["eval_dir"] is None and config["train_dir"] == "x"
    with pytest.raises(ConfigError, match="'sampling_settings.schedule' must be one of"):
        resolve_config({"model": "musicvae", "sampling_settings": {"schedule": "linear"}})


def test_save_and_reload_round_trip(tmp_path):
    config = resolve_config({"dim": 32})
    save_config(config, tmp_path / "run")
    assert load_run_config(tmp_path / "run") == config
    assert load_run_config(tmp_path / "missing") is None


def test_differences_name_keys():
    a = resolve_config({"model": "musicvae"})
    b = with_overrides(a, {"encoder_params.hidden_size": 8, "z_size": 4})
    keys = config_differences(a, b)
    assert keys == ["encoder_params.hidden_size", "z_size"]
    assert describe_differences(a, b, keys)[1] == "z_size: 256 -> 4"


@pytest.mark.parametrize("key,value,expected", [
    ("decay_rate", 0.0, r"'decay_rate' must be in \(0, 1\] \(1: no decay\), got 0.0"),
    ("decay_rate", 1.5, r"'decay_rate' must be in \(0, 1\]"),
    ("min_learning_rate", -1e-5, "'min_learning_rate' must be >= 0"),
    ("decay_start_step", -1, r"'decay_start_step' must be >= 0 \(the step the decay starts "
                             r"after\), got -1"),
    ("decay_start_step", 1.5, "'decay_start_step' must be of type int, got float 1.5"),
])
def test_musicvae_learning_rate_decay_range(key, value, expected):
    with pytest.raises(ConfigError, match=expected):
        resolve_config({"model": "musicvae", key: value})
    assert resolve_config({"model": "musicvae"})["decay_rate"] == 1.0
