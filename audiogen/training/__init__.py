"""What both models share in training: the run, its tasks, callbacks, checkpoints, optimizers."""
