"""Where and how this package writes files: atomic replacement, and the per-user cache folder.

Imported by the config and by extraction workers, so it imports nothing beyond the standard
library.
"""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; on success it replaces `path` (mode 0644 less the
    umask), on error it is removed. Parent folders are created."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def user_cache_dir(*parts):
    """`$XDG_CACHE_HOME/audiogen/<parts...>` (`~/.cache` when the variable is unset or empty).

    Only the path: the folder is not created.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "audiogen", *parts)


def unused_paths(paths):
    """`paths` when none of them exists, else the same names with the first free `-<k>` after
    their common stem (`out.wav` -> `out-1.wav`; `out_0.wav, out_1.wav` -> `out-1_0.wav,
    out-1_1.wav`): a set of outputs never replaces an earlier one."""
    paths = [os.fspath(p) for p in paths]
    if not any(os.path.exists(p) for p in paths):
        return paths
    stem = os.path.commonprefix([os.path.splitext(p)[0] for p in paths])
    if len(paths) > 1:
        stem = stem.rstrip("_")
    k = 1
    while True:
        candidates = [f"{stem}-{k}{p[len(stem):]}" for p in paths]
        if not any(os.path.exists(p) for p in candidates):
            return candidates
        k += 1


def safe_name(name, what):
    """`name` when it is a plain file or folder name (no path separator, not `.` or `..`, not
    empty); ValueError naming `what` otherwise, so that a name cannot lead outside its folder."""
    text = str(name)
    if not text or text in (".", "..") or any(c in text for c in "/\\\0"):
        raise ValueError(f"{what} {name!r} must be a plain name, not a path (no '/' or '\\', "
                         f"not '.' or '..'): it names a folder inside its parent folder")
    return text
