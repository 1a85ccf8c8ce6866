"""Generate audio or melodies from a trained model: `python generate.py --help`."""
import sys

from audiogen.cli.generate import main

if __name__ == "__main__":
    sys.exit(main())
