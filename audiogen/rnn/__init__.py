"""Recurrent maths shared by both models: the reference cells and the fast sequence paths."""
