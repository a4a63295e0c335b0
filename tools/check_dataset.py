#!/usr/bin/env python
"""Lists the image and label files of registered datasets that cannot be read (truncated, corrupt, not images).

    python tools/check_dataset.py coco_2017_train_stuff_sem_seg [MORE DATASET NAMES ...]

Every file is decoded completely, which takes a while on a large dataset (a progress bar shows how far it is).
Prints one line per unreadable file ("PATH: why") and a count. Exit status: 0 all files read, 1 some cannot be
read, 2 a dataset is not registered or its folders are missing. The datasets root is $DETECTRON2_DATASETS.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

import sed  # noqa: E402,F401  registers the datasets
from detectron2.data import DatasetCatalog  # noqa: E402
from sed.data.image_io import find_unreadable_files  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    parser.add_argument("datasets", nargs="+", metavar="NAME", help="registered dataset names (sed/data/datasets)")
    args = parser.parse_args(argv)
    bad = []
    for name in args.datasets:
        if name not in DatasetCatalog.list():
            print(f"check_dataset.py: error: dataset {name!r} is not registered (see sed/data/datasets)",
                  file=sys.stderr)
            return 2
        try:
            records = DatasetCatalog.get(name)
        except FileNotFoundError as e:
            print(f"check_dataset.py: error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        bad += find_unreadable_files(records)
    for path, reason in bad:
        print(f"{path}: {reason}")
    print(f"{len(bad)} unreadable file(s) in {', '.join(args.datasets)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
