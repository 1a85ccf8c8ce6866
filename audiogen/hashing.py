"""Stable hashes of text: the same value on every run, machine and Python version.

Python's `hash()` of a string changes with every process (hash randomization), so anything that
must pick the same items again (held-out files, validation pieces, per-file random subsets)
hashes with these instead. All are SHA-1 of the UTF-8 bytes; changing them would move existing
validation splits and training subsets.
"""
import hashlib


def stable_digest(text):
    """The 20-byte SHA-1 digest of `text` (UTF-8)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def stable_uint32(text):
    """The first 4 bytes of `stable_digest(text)`, big-endian, as an int in [0, 2**32)."""
    return int.from_bytes(stable_digest(text)[:4], "big")


def stable_fraction(text):
    """`stable_uint32(text) / 2**32`, a float in [0, 1)."""
    return stable_uint32(text) / 2 ** 32
