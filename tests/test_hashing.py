"""audiogen.hashing: the values are pinned, since held-out files, validation pieces and per-file
training subsets of existing data are chosen by them."""
import hashlib

import pytest

from audiogen.hashing import stable_digest, stable_fraction, stable_uint32

# (text, sha1 hex digest of its UTF-8 bytes, first 8 hex digits as an int)
KNOWN = [
    ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709", 3661210606),
    ("tune00.mid", "62458c4edcba78bc5d717a39a9437f7e3271e7eb", 1648725070),
    ("folder/tune07.mid", "62a5f66c46d713f3246cb2fdf4703b1bb0a820de", 1655043692),
    ("sub/b.wav\x000", "bfc3ef1ce0874e99e2269c758efab7bf517038fd", 3217288988),
    ("café.mid", "f89065e56a37e763788374c9a2e3448d1a8a52c7", 4170212837),
]


@pytest.mark.parametrize("text, hexdigest, uint32", KNOWN)
def test_known_values(text, hexdigest, uint32):
    assert stable_digest(text) == bytes.fromhex(hexdigest)
    assert stable_uint32(text) == uint32
    assert stable_fraction(text) == uint32 / 2 ** 32


def test_same_as_the_hashlib_formulas_they_replace():
    for i in range(200):
        text = f"folder/tune{i:03d}.mid"
        digest = hashlib.sha1(text.encode("utf-8"))
        assert stable_digest(text) == digest.digest()
        assert stable_uint32(text) == int(digest.hexdigest()[:8], 16)
        assert stable_fraction(text) == int(digest.hexdigest()[:8], 16) / 2**32
        assert 0 <= stable_fraction(text) < 1


def test_splits_built_on_them_are_unchanged():
    from audiogen.data.audio_dataset import piece_key
    from audiogen.data.melody_dataset import hold_out_files
    assert piece_key("sub/b.wav", 0) == bytes.fromhex(KNOWN[3][1])
    names = [f"folder/tune{i:02d}.mid" for i in range(20)]
    expected = [n for n in names
                if int(hashlib.sha1(n.encode("utf-8")).hexdigest()[:8], 16) / 2**32 < 0.25]
    assert hold_out_files(names, 0.25) == ([n for n in names if n not in expected], expected)
    assert expected == [f"folder/tune{i:02d}.mid" for i in (2, 3, 5, 8, 9, 12, 13, 18)]
