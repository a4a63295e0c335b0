#!/usr/bin/env python
"""Fetches model-zoo weights by name into their caches, e.g. on a login node for compute nodes without internet.

    python tools/download.py sed-b clip-b     # SED-B's checkpoint, and the CLIP weights SED-B trains from
    python tools/download.py --list           # the names, files, sizes and caches

Checkpoints (sed-b, sed-l) go to $SED_HOME/checkpoints (default ~/.cache/sed); CLIP weights (clip-b, clip-l) are
fetched by open_clip's own download function into the Hugging Face hub cache (HF_HOME / HF_HUB_CACHE), where
open_clip finds them when it builds the model. Prints each file's path. Exit status: 0 all fetched, 1 some could
not be (one line each, saying how to get them by hand), 2 an unknown name. Code: sed/model_zoo/.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing


def describe(entry):
    from sed import model_zoo

    if isinstance(entry, model_zoo.Checkpoint):
        return (
            f"{entry.name:8} {entry.filename} ({model_zoo.format_size(entry.size)}) -> "
            f"{model_zoo.cached_checkpoint_path(entry)}  [{entry.config}]"
        )
    return (
        f"{entry.name:8} open_clip {entry.clip_model}/{entry.tag} "
        f"(about {model_zoo.format_size(entry.approx_size)}) -> {model_zoo.hub_cache_dir()}  "
        f"[{', '.join(entry.configs)}]"
    )


def main(argv=None):
    from sed import model_zoo

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"zoo names: {', '.join(model_zoo.zoo_names())}")
    parser.add_argument("--list", action="store_true", help="list the zoo and where each file is cached")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(describe(model_zoo.get_entry(name)) for name in model_zoo.zoo_names()))
        return 0
    if not args.names:
        parser.error("name the weights to fetch, e.g. sed-b clip-b (--list shows them)")
    unknown = [name for name in args.names if name not in model_zoo.MODEL_ZOO]
    if unknown:
        parser.error(f"not in the model zoo: {', '.join(unknown)} (names: {', '.join(model_zoo.zoo_names())})")
    failed = 0
    for name in args.names:
        try:
            print(f"{name}: {model_zoo.fetch(name)}")
        except model_zoo.WeightsUnavailableError as e:
            print(f"download.py: error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
