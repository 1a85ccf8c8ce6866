"""tf.data pipelines: `audio_dataset` (SampleRNN windows), `melody_dataset` (MusicVAE slices).

Both return `(train, validation, info)`. Public names are imported lazily (importing TensorFlow
is slow).
"""
_PUBLIC = {
    "make_audio_datasets": ("audiogen.data.audio_dataset", "make_audio_datasets"),
    "AudioDatasets": ("audiogen.data.audio_dataset", "AudioDatasets"),
    "AudioDatasetInfo": ("audiogen.data.audio_dataset", "AudioDatasetInfo"),
    "make_melody_datasets": ("audiogen.data.melody_dataset", "make_melody_datasets"),
    "MelodyDatasets": ("audiogen.data.melody_dataset", "MelodyDatasets"),
    "MelodyDatasetInfo": ("audiogen.data.melody_dataset", "MelodyDatasetInfo"),
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'audiogen.data' has no attribute {name!r}")
    import importlib
    module, attr = _PUBLIC[name]
    return getattr(importlib.import_module(module), attr)
