"""Released weights by short name (MODEL_ZOO.md): `MODEL.WEIGHTS sed-b`, `OpenVocabSegmenter(weights="sed-l")`,
`python tools/download.py sed-b clip-b`.

- `entries`: the zoo (`MODEL_ZOO`: name -> `Checkpoint` or `ClipWeights`).
- `download`: the checkpoint cache (`SED_HOME`, default ~/.cache/sed) and resumable, checked downloads.
- `path_handler`: `sed://NAME` in detectron2's PathManager, and bare names rewritten to it (`weights_uri`).
- `clip`: open_clip weights fetched through open_clip, and the one-line message when they cannot be.
"""

from .clip import clip_unavailable_message, fetch_clip, hub_cache_dir
from .download import WeightsUnavailableError, cache_dir, cached_checkpoint_path, fetch_checkpoint, format_size
from .entries import MODEL_ZOO, Checkpoint, ClipWeights, get_entry, zoo_names
from .path_handler import PREFIX, weights_uri

__all__ = [
    "MODEL_ZOO",
    "PREFIX",
    "Checkpoint",
    "ClipWeights",
    "WeightsUnavailableError",
    "cache_dir",
    "cached_checkpoint_path",
    "clip_unavailable_message",
    "fetch",
    "fetch_checkpoint",
    "fetch_clip",
    "format_size",
    "get_entry",
    "hub_cache_dir",
    "weights_uri",
    "zoo_names",
]


def fetch(name):
    """The local path of zoo entry `name` (a checkpoint or CLIP weights), downloaded first if needed."""
    entry = get_entry(name)
    return fetch_clip(name) if isinstance(entry, ClipWeights) else fetch_checkpoint(name)
