"""What a written melody keeps of its sources: tempo, program, time signature, step markers.

Each function returns keyword arguments for `audiogen.midi.files.write_midi`. A tempo or program
given explicitly (`--qpm`, `--program`) wins; otherwise:

* sampled melodies: 120 qpm, program 0 (piano), 4/4;
* a reconstruction: the tempo, program and meter of the window it encodes (`SourceSlice`);
* an interpolation from A to B: step i of n (t = i / (n - 1)) has the tempo A's + t * (B's - A's)
  and the program of the nearer source (A's below t = 0.5, B's from there on); the meter is
  theirs when they share it, else 4/4. The file with all steps in a row changes tempo and
  program where a step starts and has a marker per step.
"""
import os

from audiogen.midi.encoding import DEFAULT_QPM

DEFAULT_PROGRAM = 0
DEFAULT_TIME_SIGNATURE = (4, 4)


def sampled_context(count, qpm=None, program=None):
    """Keyword arguments for each of `count` sampled melodies."""
    context = dict(qpm=qpm if qpm is not None else DEFAULT_QPM,
                   program=program if program is not None else DEFAULT_PROGRAM,
                   time_signature=DEFAULT_TIME_SIGNATURE)
    return [dict(context) for _ in range(count)]


def reconstruction_context(source, qpm=None, program=None):
    """Keyword arguments for the reconstruction of `source` (a `SourceSlice`)."""
    return dict(qpm=qpm if qpm is not None else source.qpm,
                program=program if program is not None else source.program,
                time_signature=source.time_signature)


def interpolation_context(a, b, steps, qpm=None, program=None):
    """`(per_step, joined)`: keyword arguments for each of `steps` melodies from `a` to `b`
    (`SourceSlice`s), and for the file holding them all in a row (with a marker per step)."""
    meter = a.time_signature if a.time_signature == b.time_signature else DEFAULT_TIME_SIGNATURE
    per_step = []
    for i in range(steps):
        t = i / (steps - 1)
        per_step.append(dict(
            qpm=qpm if qpm is not None else a.qpm + t * (b.qpm - a.qpm),
            program=program if program is not None else (a.program if t < 0.5 else b.program),
            time_signature=meter))
    joined = dict(qpm=[c["qpm"] for c in per_step], program=[c["program"] for c in per_step],
                  time_signature=meter, markers=step_markers(a.path, b.path, steps))
    return per_step, joined


def step_markers(path_a, path_b, steps):
    """"step 1 of 5: t=0.00 (a.mid)", ..., "step 5 of 5: t=1.00 (b.mid)"."""
    markers = [f"step {i + 1} of {steps}: t={i / (steps - 1):.2f}" for i in range(steps)]
    markers[0] += f" ({os.path.basename(path_a)})"
    markers[-1] += f" ({os.path.basename(path_b)})"
    return markers
