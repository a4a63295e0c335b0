"""`sed://NAME` paths and bare zoo names for MODEL.WEIGHTS.

Weights reach a model through detectron2's checkpointer, which asks detectron2's PathManager for a local file
whenever the path is not one already (as for `detectron2://` and `https://`). Registering a `sed://` handler
there makes every loader that uses detectron2's checkpointer (training, evaluation, the demo, the benchmark)
take zoo names without a change of its own. A bare name (`MODEL.WEIGHTS sed-b`) is rewritten to `sed://sed-b`
where configs are read (`weights_uri`), so the saved config.yaml records where the weights came from; a local
file that happens to be called like a zoo name is still reachable as `./sed-b`.
"""

from detectron2.utils.file_io import PathHandler, PathManager

from .download import fetch_checkpoint
from .entries import Checkpoint, zoo_names

__all__ = ["PREFIX", "ZooPathHandler", "weights_uri"]

PREFIX = "sed://"


class ZooPathHandler(PathHandler):
    """Resolves `sed://NAME` to the cached file of zoo checkpoint NAME, downloading it on first use."""

    def _get_supported_prefixes(self):
        return [PREFIX]

    def _get_local_path(self, path, force=False, **kwargs):
        return fetch_checkpoint(path[len(PREFIX) :])

    def _open(self, path, mode="r", buffering=-1, **kwargs):
        return open(self._get_local_path(path), mode, buffering=buffering)

    def _isfile(self, path, **kwargs):
        return path[len(PREFIX) :] in zoo_names(Checkpoint)


def weights_uri(weights):
    """`sed://NAME` for a bare zoo checkpoint name, anything else unchanged."""
    return PREFIX + weights if weights in zoo_names(Checkpoint) else weights


PathManager.register_handler(ZooPathHandler(), allow_override=True)
