"""Compiled TensorFlow ops (C++), built on first use with the machine's C++ compiler."""
