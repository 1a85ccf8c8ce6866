"""Names of the files a command writes."""
import os


def numbered_paths(output_path, count):
    """`output_path` for one file; `stem_0.ext`, `stem_1.ext`, ... for several."""
    if count == 1:
        return [output_path]
    stem, ext = os.path.splitext(output_path)
    return [f"{stem}_{i}{ext}" for i in range(count)]
