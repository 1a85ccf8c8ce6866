"""TensorBoard summaries of a MusicVAE in training: latent histograms and piano-roll images.

The piano rolls are `audiogen.plots` figures, the same pictures as `generate.py --plot` draws.
"""
import keras
import numpy as np
import tensorflow as tf

from audiogen.plots import figure_image, melodies_figure


def comparison_image(originals, reconstructions):
    """`uint8 [1, H, W, 3]`: each original's piano roll above its reconstruction."""
    melodies, titles = [], []
    for i, (a, b) in enumerate(zip(originals, reconstructions)):
        melodies += [a, b]
        titles += [f"example {i + 1}: original", f"example {i + 1}: greedy reconstruction"]
    return figure_image(melodies_figure(melodies, titles))


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
