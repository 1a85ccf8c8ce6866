"""TensorBoard summaries of a MusicVAE in training: latent histograms and piano-roll images.

The roll of one melody is `audiogen.midi.piano_roll`; this module lays rolls out side by side
(`comparison_image`) and writes them with the latent histograms (`AdvancedSummaries`).
"""
import keras
import numpy as np
import tensorflow as tf

from audiogen.midi.piano_roll import piano_roll


def comparison_image(originals, reconstructions):
    """`uint8 [1, H, W, 1]`: each original's roll above its reconstruction, examples stacked,
    separated by grey lines."""
    rows = []
    for a, b in zip(originals, reconstructions):
        rows += [piano_roll(a), np.full((1, len(a)), 64, np.uint8), piano_roll(b),
                 np.full((3, len(a)), 128, np.uint8)]
    return np.concatenate(rows)[None, :, :, None]


class AdvancedSummaries(keras.callbacks.Callback):
    """Every `interval` optimizer steps, write histograms of mu, sigma and z for a fixed batch
    and an image of its piano rolls against their greedy reconstructions.

    Args:
        batch: `int32 [B, T]` melodies (e.g. the first evaluation batch).
        writer: a `tf.summary` writer.
        interval: `int`, steps between summaries (the seed's advanced_interval).
        max_images: `int`, examples drawn in the piano-roll image.
    """

    def __init__(self, batch, writer, interval, max_images=4):
        super().__init__()
        self.batch = batch[0] if isinstance(batch, (tuple, list)) else batch
        self.writer = writer
        self.interval = interval
        self.max_images = max_images

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.interval:
            return
        mu, sigma = self.model.encode(self.batch)
        z = mu + sigma * tf.random.normal(tf.shape(mu))
        shown = self.batch[:self.max_images]
        recon = self.model.decode(mu[:self.max_images], temperature=1e-3)
        with self.writer.as_default(step=step):
            tf.summary.histogram("latent/mu", mu)
            tf.summary.histogram("latent/sigma", sigma)
            tf.summary.histogram("latent/z", z)
            tf.summary.image("piano_roll/original_above_reconstruction",
                             comparison_image(shown.numpy(), np.asarray(recon)))
        self.writer.flush()
