"""Training benchmarks of both models: runs bench_train_samplernn.py and bench_train_musicvae.py.

`python benchmarks/bench_train.py [--quick]`; each part prints its table and writes its JSON to
benchmarks/results/.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_train_musicvae  # noqa: E402
import bench_train_samplernn  # noqa: E402


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = ["--quick"] if "--quick" in argv else []
    return (bench_train_samplernn.main(quick) or 0) | (bench_train_musicvae.main(quick) or 0)


if __name__ == "__main__":
    sys.exit(main())
