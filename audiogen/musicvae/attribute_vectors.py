"""Attribute vectors of a MusicVAE's latent space: directions that raise one melody attribute.

For each attribute of `audiogen.midi.attributes` (note density, pitch range, mean pitch,
syncopation, rest fraction) the slices are ranked by it; its vector is the mean posterior mean
`mu` of the top quarter minus that of the bottom quarter. Adding `a * vector` to a latent code
moves what the decoder writes towards more (a > 0) or less (a < 0) of the attribute: a = 1 is
the step from a typical bottom-quartile melody to a typical top-quartile one.

The ranking is by rank, not by threshold: with many equal values (a syncopation of 0 is common)
each quarter still holds `n // 4` slices, ties split in a seeded random order. Slices whose
attribute is undefined (NaN: no note) are left out of that attribute's ranking.

A run stores them in `<run>/attribute_vectors.json` (`save` / `load`), with the checkpoint whose
encoder computed them. This module holds the maths and the file; which slices and which
checkpoint a run uses are decided in `audiogen.training.attribute_vectors`.
"""
import dataclasses
import json
import math
import os

import numpy as np

from audiogen.files import atomic_path
from audiogen.midi.attributes import ATTRIBUTES, UNITS, measure_all

FILE_NAME = "attribute_vectors.json"
QUARTILE = 0.25
DEFAULT_MAX_SLICES = 20000
DEFAULT_BATCH = 256
_FORMAT = 1


@dataclasses.dataclass
class AttributeVectors:
    """The attribute vectors of one checkpoint of a MusicVAE.

    Args:
        names: `tuple[str]`, attribute names (the order of `audiogen.midi.attributes.ATTRIBUTES`).
        vectors: float32 `[num_attributes, z_size]`, mean `mu` of the top quartile minus the
            mean `mu` of the bottom quartile, one row per name.
        bottom_threshold, top_threshold: float64 `[num_attributes]`: the attribute's value at
            the upper edge of the bottom quartile and at the lower edge of the top quartile.
        bottom_mean, top_mean: float64 `[num_attributes]`: mean attribute of each quartile.
        num_slices: `int`, slices encoded.
        checkpoint: `str`, the checkpoint whose encoder gave `mu` (relative to the run
            directory when inside it).

    Reference: Roberts et al., "A Hierarchical Latent Vector Model for Learning Long-Term
    Structure in Music", ICML 2018, its attribute vector experiments (mean latent code of the
    top quartile minus that of the bottom quartile; note density, 16th note syncopation, ...).
    """
    names: tuple
    vectors: np.ndarray
    bottom_threshold: np.ndarray
    top_threshold: np.ndarray
    bottom_mean: np.ndarray
    top_mean: np.ndarray
    num_slices: int
    checkpoint: str

    @property
    def z_size(self):
        return int(self.vectors.shape[1])

    def index(self, name):
        """Row of `name`; ValueError listing the valid names for another."""
        if name not in self.names:
            raise ValueError(f"unknown attribute {name!r}; valid attributes: "
                             f"{', '.join(self.names)}")
        return self.names.index(name)

    def shift(self, amounts):
        """float32 `[z_size]`: the sum of `amount * vector` over `amounts` (`[(name, amount)]`
        or `{name: amount}`); ValueError for an unknown name."""
        items = amounts.items() if isinstance(amounts, dict) else amounts
        total = np.zeros(self.z_size, np.float32)
        for name, amount in items:
            total += np.float32(amount) * self.vectors[self.index(name)]
        return total

    def describe(self, name):
        """E.g. "bottom quartile 3.2 (up to 3), top quartile 7.9 (from 7) onsets per 16 steps;
        |vector| 2.31"."""
        i = self.index(name)
        return (f"bottom quartile {self.bottom_mean[i]:.3g} (up to {self.bottom_threshold[i]:.3g})"
                f", top quartile {self.top_mean[i]:.3g} (from {self.top_threshold[i]:.3g}) "
                f"{UNITS.get(name, '')}; |vector| {np.linalg.norm(self.vectors[i]):.3g}")

    # --- file ---------------------------------------------------------------------------------

    def to_json(self):
        return {
            "format": _FORMAT, "checkpoint": self.checkpoint, "num_slices": int(self.num_slices),
            "quartile": QUARTILE, "z_size": self.z_size,
            "attributes": {name: {
                "bottom_threshold": _number(self.bottom_threshold[i]),
                "top_threshold": _number(self.top_threshold[i]),
                "bottom_mean": _number(self.bottom_mean[i]),
                "top_mean": _number(self.top_mean[i]),
                "vector": [float(v) for v in self.vectors[i]],
            } for i, name in enumerate(self.names)},
        }

    @classmethod
    def from_json(cls, data, source):
        """From `to_json()`'s dict; ValueError naming `source` and the key when malformed."""
        try:
            if data.get("format") != _FORMAT:
                raise ValueError(f"key 'format' must be {_FORMAT}, got {data.get('format')!r}")
            entries = data["attributes"]
            names = tuple(entries)
            if not names:
                raise ValueError("key 'attributes' is empty")
            columns = {key: np.array([_float(entries[n][key]) for n in names], np.float64)
                       for key in ("bottom_threshold", "top_threshold", "bottom_mean",
                                   "top_mean")}
            z_size = int(data["z_size"])
            rows = [entries[n]["vector"] for n in names]
            if any(not isinstance(r, list) or len(r) != z_size or
                   not all(isinstance(v, (int, float)) and math.isfinite(v) for v in r)
                   for r in rows):
                raise ValueError(f"every 'vector' must hold z_size={z_size} finite numbers")
            vectors = np.array(rows, np.float32).reshape(len(names), z_size)
            return cls(names, vectors, num_slices=int(data["num_slices"]),
                       checkpoint=str(data["checkpoint"]), **columns)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{source}: not an attribute vector file (missing or bad {e})") \
                from None
        except ValueError as e:
            if str(e).startswith(source):
                raise
            raise ValueError(f"{source}: {e}") from None

    def save(self, run_dir):
        """Write `<run_dir>/attribute_vectors.json` atomically; returns its path."""
        path = os.path.join(run_dir, FILE_NAME)
        with atomic_path(path, ".json") as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.to_json(), f, indent=1)
                f.write("\n")
        return path


def load(run_dir):
    """The `AttributeVectors` stored in `run_dir`, or None when it has none; ValueError naming
    the file when it cannot be read."""
    path = os.path.join(run_dir, FILE_NAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read attribute vectors ({e}); remove the file or "
                         f"recompute it with python -m audiogen.cli.attribute_vectors "
                         f"{run_dir}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an attribute vector file (a JSON object is expected)")
    return AttributeVectors.from_json(data, path)


def _number(value):
    """JSON has no NaN: an undefined threshold (too few slices) is written as null."""
    return float(value) if math.isfinite(value) else None


def _float(value):
    return float("nan") if value is None else float(value)


# --- computing ----------------------------------------------------------------------------------

def encode_means(model, slices, batch_size=DEFAULT_BATCH):
    """Posterior means `mu` float32 `[n, z_size]` of int `[n, seq_len]` slices, `batch_size`
    at a time."""
    slices = np.asarray(slices, np.int32)
    parts = [np.asarray(model.encode(slices[i:i + batch_size])[0], np.float32)
             for i in range(0, len(slices), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, model.z_size), np.float32)


def subset(slices, max_slices, seed=0):
    """At most `max_slices` slices: a seeded random subset in corpus order (None: all)."""
    if max_slices is None or len(slices) <= max_slices:
        return slices
    keep = np.sort(np.random.default_rng(seed).choice(len(slices), max_slices, replace=False))
    return slices[keep]


def quartile_groups(values, seed=0):
    """`(bottom, top)` index arrays of the `n // 4` lowest and highest finite `values`, ties in
    a seeded random order (the same `seed` gives the same groups)."""
    values = np.asarray(values, np.float64)
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.random.default_rng(seed).permutation(len(finite))]
    order = order[np.argsort(values[order], kind="stable")]
    size = int(len(order) * QUARTILE)
    return order[:size], order[len(order) - size:]


def attribute_vectors(mu, attributes, checkpoint, seed=0):
    """`AttributeVectors` from the means `mu` `[n, z_size]` of slices and their attributes
    `{name: [n]}` (`audiogen.midi.attributes.measure_all`).

    Raises ValueError when an attribute is defined for fewer than 4 slices (a quartile would be
    empty).
    """
    mu = np.asarray(mu, np.float64)
    rows = {key: [] for key in ("vectors", "bottom_threshold", "top_threshold", "bottom_mean",
                                "top_mean")}
    for name, values in attributes.items():
        values = np.asarray(values, np.float64)
        bottom, top = quartile_groups(values, seed)
        if len(bottom) == 0:
            raise ValueError(f"attribute vectors need at least 4 slices with a defined {name}, "
                             f"got {int(np.isfinite(values).sum())} of {len(values)}")
        rows["vectors"].append(mu[top].mean(0) - mu[bottom].mean(0))
        rows["bottom_threshold"].append(values[bottom].max())
        rows["top_threshold"].append(values[top].min())
        rows["bottom_mean"].append(values[bottom].mean())
        rows["top_mean"].append(values[top].mean())
    return AttributeVectors(
        tuple(attributes), np.array(rows.pop("vectors"), np.float32),
        num_slices=len(mu), checkpoint=checkpoint,
        **{key: np.array(value, np.float64) for key, value in rows.items()})


def compute(model, slices, checkpoint, max_slices=DEFAULT_MAX_SLICES, batch_size=DEFAULT_BATCH,
            seed=0):
    """`AttributeVectors` of every attribute of `audiogen.midi.attributes` over `slices`
    (int `[n, seq_len]`; at most `max_slices` of them, a seeded random subset), encoded by
    `model` in batches of `batch_size`."""
    slices = subset(np.asarray(slices, np.int32), max_slices, seed)
    if len(slices) < 4:
        raise ValueError(f"attribute vectors need at least 4 slices (a quarter of them at each "
                         f"end), got {len(slices)}")
    return attribute_vectors(encode_means(model, slices, batch_size), measure_all(slices),
                             checkpoint, seed)


__all__ = ["ATTRIBUTES", "AttributeVectors", "FILE_NAME", "attribute_vectors", "compute",
           "encode_means", "load", "quartile_groups", "subset"]
