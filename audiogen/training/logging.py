"""Console logging of training progress."""
import keras


def format_logs(logs):
    return " - ".join(f"{name}: {value:.4f}" for name, value in sorted((logs or {}).items())
                      if isinstance(value, (int, float)))


class StepLogger(keras.callbacks.Callback):
    """Print each training step (each compiled execution) on its own line, and each epoch's
    validation results; used for `--verbose true` in place of the overwriting progress bar."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        print(f"epoch {self.epoch} step {batch + 1}: {format_logs(logs)}", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        print(f"epoch {epoch + 1} done: {format_logs(logs)}", flush=True)
