"""What both models share in training: callbacks, checkpoints, schedules, loss maths."""
