"""audiogen: neural generation of music and sound (SampleRNN, MusicVAE) on TensorFlow 2 / Keras 3.

Public names are imported lazily so that `import audiogen.config` stays light.
"""
__version__ = "0.1.0"

_PUBLIC = {
    "load_config": ("audiogen.config", "load_config"),
    "ConfigError": ("audiogen.config", "ConfigError"),
    "SampleRNN": ("audiogen.samplernn.model", "SampleRNN"),
    "MusicVAE": ("audiogen.musicvae.model", "MusicVAE"),
    "load_audio": ("audiogen.audio.io", "load_audio"),
    "save_wav": ("audiogen.audio.io", "save_wav"),
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'audiogen' has no attribute {name!r}")
    import importlib
    module, attr = _PUBLIC[name]
    return getattr(importlib.import_module(module), attr)
