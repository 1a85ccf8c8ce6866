"""Which time signatures a melody extraction uses: the `meters` setting and its `MeterRule`.

Melodies live on a grid of sixteenth-note steps and MusicVAE's windows are `slice_bar * 16`
steps long. A meter's bar is `numerator * 16 / denominator` steps (4/4 and 2/2: 16; 2/4: 8;
3/4 and 6/8: 12; 9/8: 18).

The setting (config key `meters`):

* `None` (default): every meter whose bar is 16 steps (4/4, 2/2, 8/8, ...), as Magenta's melody
  converter does.
* a list of time signatures such as `["2/4", "6/8"]`: those as well.
* `"any"`: every meter whose bar is a whole number of steps (not, e.g., 3/32).

A string of comma-separated time signatures (`"2/4,6/8"`, as the `--meters` flag gives) is the
same as the list; `normalize_setting` turns every form into None, "any" or a list.

In a meter whose bar is not 16 steps a window still holds `slice_bar * 16` steps; it starts on a
bar line of the source meter and the next window starts one source bar later. With `slice_bar`
2 a window is four bars of 2/4, 2 2/3 bars of 3/4 or 6/8 (it ends a third of the way into the
third bar: compound meters are cut at a step count, not at a bar line), 1 7/9 bars of 9/8.

This module is pure Python (the config imports it).
"""
import dataclasses
import fractions
import re

from audiogen.midi.encoding import STEPS_PER_BAR

ANY = "any"
# Sixteenth steps in a whole note: a bar of n/d lasts n * 16 / d steps.
STEPS_PER_WHOLE = 16
_METER = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
SETTING_HELP = ('null (meters whose bar is 16 sixteenth steps: 4/4, 2/2, ...), "any", or a list '
                'of time signatures such as ["2/4", "6/8"]')


def meter_name(numerator, denominator):
    return f"{numerator}/{denominator}"


def bar_steps(numerator, denominator):
    """Steps (sixteenths) in a bar of `numerator/denominator`; None when not a whole number (or
    not a time signature MIDI can hold: the denominator is a power of 2)."""
    if numerator < 1 or denominator < 1 or denominator & (denominator - 1) or \
            numerator * STEPS_PER_WHOLE % denominator:
        return None
    return numerator * STEPS_PER_WHOLE // denominator


def parse_meter(text):
    """`"6/8"` -> `(6, 8)`; ValueError naming the value and what is expected."""
    match = _METER.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a time signature such as \"2/4\" or \"6/8\"")
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if numerator < 1 or denominator < 1 or denominator & (denominator - 1):
        raise ValueError(f"{text!r}: a time signature needs a positive numerator and a "
                         f"denominator that is a power of 2")
    if bar_steps(numerator, denominator) is None:
        raise ValueError(f"{text!r}: its bar is {fractions.Fraction(numerator * 16, denominator)} "
                         f"sixteenth steps; melodies use a grid of whole sixteenth steps")
    return numerator, denominator


def normalize_setting(setting):
    """None, "any", or the list of time signatures ("n/d", in the order given, without repeats)
    of a `meters` setting; ValueError as `MeterRule.from_setting`."""
    MeterRule.from_setting(setting)
    if setting is None:
        return None
    if isinstance(setting, str):
        if setting.strip().lower() == ANY:
            return ANY
        setting = _split(setting)
    names = [meter_name(*parse_meter(text)) for text in setting]
    return list(dict.fromkeys(names))


def _bad_setting(detail):
    return ValueError(f"'meters' must be {SETTING_HELP}; {detail}")


def _split(text):
    """"2/4, 6/8" -> ["2/4", " 6/8"]; text without a time signature stays one (bad) item."""
    return [part for part in text.split(",") if part.strip()] or [text]


def describe_bars(steps, steps_per_bar):
    """`steps` in bars of `steps_per_bar` steps, e.g. "4", "2 2/3"."""
    bars = fractions.Fraction(steps, steps_per_bar)
    whole, part = divmod(bars, 1)
    if not part:
        return str(whole)
    return f"{whole} {part}" if whole else str(part)


@dataclasses.dataclass(frozen=True)
class MeterRule:
    """The meters an extraction uses (see the module docstring).

    Args:
        extra: `((numerator, denominator), ...)` used besides the 16-step bars, sorted.
        any_meter: every meter with a bar of whole steps.
    """
    extra: tuple = ()
    any_meter: bool = False

    @classmethod
    def from_setting(cls, setting):
        """The rule of a `meters` setting (None, "any", a list of "n/d"), or of a rule itself.

        Raises ValueError ("'meters' must be ...") naming the value and what is expected.
        """
        if isinstance(setting, MeterRule):
            return setting
        if setting is None:
            return cls()
        if isinstance(setting, str):
            if setting.strip().lower() == ANY:
                return cls(any_meter=True)
            setting = _split(setting)
        if not isinstance(setting, (list, tuple)):
            raise _bad_setting(f"got {type(setting).__name__} {setting!r}")
        try:
            meters = {parse_meter(text) for text in setting}
        except ValueError as e:
            raise _bad_setting(str(e)) from None
        return cls(extra=tuple(sorted(m for m in meters if bar_steps(*m) != STEPS_PER_BAR)))

    @property
    def setting(self):
        """The canonical setting: None, "any" or a sorted list of extra meters."""
        if self.any_meter:
            return ANY
        return [meter_name(*m) for m in self.extra] or None

    def accepts(self, numerator, denominator):
        steps = bar_steps(numerator, denominator)
        if steps is None:
            return False
        return steps == STEPS_PER_BAR or self.any_meter or (numerator, denominator) in self.extra

    def describe(self):
        """E.g. "bars of 16 steps (4/4, 2/2, ...) and 2/4, 6/8"."""
        if self.any_meter:
            return "any meter whose bar is a whole number of sixteenth steps"
        default = "bars of 16 sixteenth steps (4/4, 2/2, ...)"
        return default + (" and " + ", ".join(self.setting) if self.extra else "")
