"""Names of the files a command writes: numbered for several, never replacing earlier ones."""
import os

from audiogen.files import unused_paths


def numbered_paths(output_path, count):
    """`output_path` for one file; `stem_0.ext`, `stem_1.ext`, ... for several."""
    if count == 1:
        return [output_path]
    stem, ext = os.path.splitext(output_path)
    return [f"{stem}_{i}{ext}" for i in range(count)]


def output_paths(paths, overwrite):
    """`paths`, or with `overwrite` false and any of them taken, the next free set of names
    (`audiogen.files.unused_paths`), said on the console."""
    if overwrite:
        return list(paths)
    free = unused_paths(paths)
    if free != list(paths):
        print(f"{paths[0]} exists: writing {free[0]}" + (" ..." if len(free) > 1 else "")
              + " instead (--overwrite replaces existing files)")
    return free


def outputs_and_pictures(paths, overwrite, plot):
    """`(outputs, pictures)`: `output_paths(paths)` and, with `plot`, the PNG beside each one
    (same stem), named together so that an output and its picture share a name; the pictures
    are `[None, ...]` without `plot`."""
    pictures = [os.path.splitext(p)[0] + ".png" for p in paths] if plot else []
    named = output_paths(list(paths) + pictures, overwrite)
    return named[:len(paths)], named[len(paths):] or [None] * len(paths)
