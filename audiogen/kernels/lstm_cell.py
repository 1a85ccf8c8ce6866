"""`LstmCellForward` / `LstmCellBackward`: the element-wise part of an LSTM step in one op each.

Used by the whole-sequence LSTM loops of `audiogen.rnn.lstm_sequence` when training in a
TensorFlow graph: a step there is then the recurrent matrix product and one of these ops instead
of ~20 small operations forward and as many backward (see `lstm_cell.cc` for the maths and
layouts). Compiled on first use (see `audiogen.kernels.compiled`); `load()` returns None, with a
warning, when that is impossible, and callers use TensorFlow's operations.
"""
import functools
import os

from audiogen.kernels import compiled

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lstm_cell.cc")


@functools.lru_cache(maxsize=None)
def load():
    """The loaded op module (built on first use), or None with a warning saying why."""
    return compiled.load(SOURCE, "LstmCell", "TensorFlow's element-wise operations")
