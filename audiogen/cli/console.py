"""A quiet console: audiogen's messages and Keras's progress bars, not TensorFlow's log lines.

TensorFlow's own C++ logging obeys `TF_CPP_MIN_LOG_LEVEL`, but the abseil logging of its native
libraries (XLA's "service initialized", "Compiled cluster") writes to the stderr file descriptor
before anything can configure it. So, unless `--debug` is given or the user set
`TF_CPP_MIN_LOG_LEVEL`, stderr goes through a pipe whose reader forwards every line but those.
"""
import atexit
import logging
import os
import re
import sys
import threading

_NATIVE_LOG_LINE = re.compile(
    rb"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] |"
    rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |"
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called)")


def quiet_console(debug):
    """Hide TensorFlow's log lines (not with `debug`, nor when the user set
    `TF_CPP_MIN_LOG_LEVEL`). Call it before TensorFlow is imported."""
    if debug or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    _filter_native_log_lines()


def _filter_native_log_lines():
    try:
        saved = os.dup(2)
        forward_to = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(forward_to, "wb", buffering=0) as out:
            for line in pipe:
                if not _NATIVE_LOG_LINE.match(line):
                    out.write(line)

    reader = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    reader.start()

    def restore():
        # Point fd 2 back at the terminal: the pipe closes, the reader forwards what is left.
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        reader.join(timeout=5)

    atexit.register(restore)
