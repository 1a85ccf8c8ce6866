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
