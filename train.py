"""Train a SampleRNN or MusicVAE model: `python train.py --help`."""
import sys

from audiogen.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
