"""Why a MIDI file gives no melody slice: the reason constants and their wording.

A corpus report counts files under these exact strings (`REASONS`); `no_melody_reason` adds the
details of one file (meters found and the meters used, notes dropped) for messages about a
single file.
"""
REASON_UNPARSABLE = "unparsable MIDI"
REASON_NO_METER = "no segment in a meter used"
REASON_UNQUANTIZABLE = "segments in a meter used could not be quantized"
REASON_NO_MELODY = "no melody (no non-drum note in 21..108 in a meter used)"
REASON_TOO_SHORT = "no melody long enough for one slice"
REASON_SILENT = "only slices without a note-on"
REASON_REPEATS = "every slice repeats one of an earlier file"
REASON_ERROR = "extraction error"
REASONS = (REASON_UNPARSABLE, REASON_NO_METER, REASON_UNQUANTIZABLE, REASON_NO_MELODY,
           REASON_TOO_SHORT, REASON_SILENT, REASON_REPEATS, REASON_ERROR)
METERS_HINT = 'the config key `meters` adds others (e.g. ["2/4", "6/8"], or "any")'


def no_melody_reason(stats):
    """Why `extract_melodies` found no melody, from its `MelodyStats`, with the details."""
    if stats.segments == 0:
        return f"{REASON_NO_MELODY}: the file has no notes"
    if stats.segments_used == 0:
        meters = ", ".join(f"{k} x{v}" for k, v in sorted(stats.meters.items()))
        return f"{REASON_NO_METER} (found: {meters}; used: {stats.rule}; {METERS_HINT})"
    if stats.segments_unquantizable == stats.segments_used:
        return REASON_UNQUANTIZABLE
    detail = []
    if stats.drum_notes:
        detail.append(f"{stats.drum_notes} drum notes skipped")
    if stats.out_of_range_notes:
        detail.append(f"{stats.out_of_range_notes} notes outside 21..108 dropped")
    return REASON_NO_MELODY + (f" ({'; '.join(detail)})" if detail else "")


def reason_category(reason):
    """The entry of `REASONS` a detailed reason (e.g. from `no_melody_reason`) starts with."""
    return next(r for r in REASONS if reason.startswith(r))
