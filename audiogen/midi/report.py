"""`ExtractionReport`: what a corpus extraction read, kept and rejected, and its summary line.

The report is saved with the slices in the extraction cache (`to_dict` / `from_dict`), so its
fields are part of the cache format.
"""
import dataclasses

from audiogen.midi.meters import MeterRule

# Per-file counters (`FileResult.stats`) that add up over the corpus.
SUMMED_STATS = ("segments", "segments_used", "melodies", "drum_notes", "out_of_range_notes",
                "windows", "silent_slices", "duplicate_slices", "repeated_slices",
                "capped_slices")
# File names kept per rejection reason: enough to find examples, short enough for a log line.
MAX_NAMES_PER_REASON = 10


@dataclasses.dataclass
class ExtractionReport:
    """What a corpus extraction read, kept and rejected (and why)."""
    midi_dir: str = ""
    slice_bar: int = 2
    max_slices_per_file: int = None
    training: bool = True
    seed: int = 0
    meter_rule: object = None       # the canonical `meters` setting (`MeterRule.setting`)
    files_found: int = 0
    files_parsed: int = 0
    files_used: int = 0
    rejected: dict = dataclasses.field(default_factory=dict)        # reason -> files
    rejected_files: dict = dataclasses.field(default_factory=dict)  # reason -> first names
    segments: int = 0
    segments_used: int = 0
    meters: dict = dataclasses.field(default_factory=dict)           # meter -> segments
    rejected_meters: dict = dataclasses.field(default_factory=dict)  # of those, not used
    melodies: int = 0
    drum_notes: int = 0
    out_of_range_notes: int = 0
    windows: int = 0
    silent_slices: int = 0
    duplicate_slices: int = 0       # repeats within a file
    repeated_slices: int = 0        # repeats of a slice an earlier file kept
    capped_slices: int = 0
    examples: int = 0
    seconds: float = 0.0
    num_workers: int = 1
    from_cache: bool = False
    cache_path: str = None

    @property
    def files_rejected(self):
        return sum(self.rejected.values())

    def add(self, result):
        """Count one file's outcome (a `audiogen.midi.corpus.FileResult`); `examples` is left
        to the caller, which knows the final slices."""
        self.files_parsed += result.parsed
        if len(result.slices):
            self.files_used += 1
        if result.reason is not None:
            self.rejected[result.reason] = self.rejected.get(result.reason, 0) + 1
            names = self.rejected_files.setdefault(result.reason, [])
            if len(names) < MAX_NAMES_PER_REASON:
                names.append(result.name)
        for field in SUMMED_STATS:
            setattr(self, field, getattr(self, field) + result.stats.get(field, 0))
        for field in ("meters", "rejected_meters"):
            counts = getattr(self, field)
            for meter, count in result.stats.get(field, {}).items():
                counts[meter] = counts.get(meter, 0) + count

    @property
    def used_meters(self):
        """meter -> segments used."""
        used = {k: v - self.rejected_meters.get(k, 0) for k, v in self.meters.items()}
        return {k: v for k, v in used.items() if v}

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def summary(self):
        """One paragraph for logs and error messages."""
        rejected = "; ".join(f"{n} {r}" for r, n in sorted(self.rejected.items())) or "none"
        rule = MeterRule.from_setting(self.meter_rule).describe()
        source = f"cache {self.cache_path}" if self.from_cache else \
            f"{self.seconds:.1f} s with {self.num_workers} worker(s)"
        return (f"{self.midi_dir}: {self.files_found} MIDI files found, {self.files_parsed} "
                f"parsed, {self.files_used} used, {self.files_rejected} rejected ({rejected}); "
                f"segments: {self.segments} (used: {_meter_counts(self.used_meters)}; not in "
                f"a meter used: {_meter_counts(self.rejected_meters)}; meters used: {rule}), "
                f"{self.melodies} melodies, "
                f"{self.windows} windows of {self.slice_bar} bars ({self.silent_slices} silent, "
                f"{self.duplicate_slices} repeated within a file and {self.repeated_slices} "
                f"repeating an earlier file's dropped, {self._capped()}); {self.examples} "
                f"examples ({source})")

    def _capped(self):
        if self.max_slices_per_file is None:
            return "no cap on slices per file (max_slices_per_file null)"
        return f"{self.capped_slices} over max_slices_per_file={self.max_slices_per_file}"


def _meter_counts(meters):
    return ", ".join(f"{k} x{v}" for k, v in sorted(meters.items())) or "none"
