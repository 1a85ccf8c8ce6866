"""What both command-line tools share: argument types, error lines."""
import argparse
import json
import sys
import warnings


def str2bool(value):
    """`true/false`, `yes/no`, `1/0` (any case) -> bool."""
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def int_or_none(value):
    """An integer, or `None`/`none` for no limit."""
    if str(value).strip().lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or None, got {value!r}") from None


def positive_float(value):
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def midi_program(value):
    """A General MIDI program number, 0..127."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a MIDI program 0..127, got {value!r}") from None
    if not 0 <= number <= 127:
        raise argparse.ArgumentTypeError(f"expected a MIDI program 0..127, got {value!r}")
    return number


def add_bool(parser, name, default, help_text):
    """`--name` alone means true; `--name false` turns it off."""
    parser.add_argument(f"--{name}", type=str2bool, nargs="?", const=True, default=default,
                        metavar="BOOL", help=help_text)


def plain_warnings():
    """Show warnings as one `warning: ...` line (no source line) on the command line."""
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"


def fail(message, code=2):
    """Print `error: message` to stderr and return the exit code (for `main` to return)."""
    print(f"error: {message}", file=sys.stderr)
    return code


def set_overrides(items):
    """{dotted.key: value} from `--set KEY=JSON` items (a value that is not JSON is a string);
    ConfigError naming the item when it has no `=`."""
    from audiogen.config import ConfigError
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set z_size=64")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


def add_debug(parser):
    parser.add_argument("--debug", action="store_true",
                        help="Show tracebacks and TensorFlow's own log lines")


def run_guarded(body, debug):
    """`body()`'s exit code; an unexpected exception becomes one error line and exit code 1
    (with `debug`: the traceback), Ctrl-C exit code 130."""
    if debug:
        return body()
    try:
        return body()
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as e:  # every failure the tools do not name themselves
        return fail(f"{type(e).__name__}: {e} (--debug shows the traceback)", 1)
