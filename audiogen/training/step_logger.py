"""Console logging of training progress."""
import keras


def format_logs(logs):
    return " - ".join(f"{name}: {value:.4f}" for name, value in sorted((logs or {}).items())
                      if isinstance(value, (int, float)))


class StepLogger(keras.callbacks.Callback):
    """Print every `every`-th training step (or compiled execution) on its own line, and each
    epoch's results; used in place of the overwriting progress bar.

    Args:
        every: `int`, print interval in optimizer steps.
    """

    def __init__(self, every=1):
        super().__init__()
        self.every = every
        self.last_printed = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step // self.every != self.last_printed // self.every:
            self.last_printed = step
            print(f"epoch {self.epoch} step {step}: {format_logs(logs)}", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        print(f"epoch {epoch + 1} done: {format_logs(logs)}", flush=True)
