"""detectron2's SemSegEvaluator, refusing predictions over another number of classes than the dataset's, and
taking label maps as well as scores."""
import zlib

from detectron2.evaluation import SemSegEvaluator

from ..data.image_io import read_image
from ..modeling.postprocess import LABELS_KEY

__all__ = ["CheckedSemSegEvaluator"]


class _ArgmaxOf:
    """Stands for scores whose argmax over classes is `labels` (H, W): detectron2's SemSegEvaluator.process uses
    nothing of `output["sem_seg"]` but `.argmax(dim=0)`."""

    def __init__(self, labels):
        self.labels = labels

    def argmax(self, dim):
        assert dim == 0, "only the argmax over classes is known"
        return self.labels


class CheckedSemSegEvaluator(SemSegEvaluator):
    """detectron2's SemSegEvaluator, which takes the argmax of whatever scores it gets: scores over fewer classes
    than the dataset's give a wrong mIoU silently, over more a reshape error. This one first checks that every
    prediction scores exactly the dataset's `stuff_classes`, and says what to set when it does not. A label file
    that cannot be read is named (`sed.data.image_io.ImageFileError`).

    A prediction is {"sem_seg": (T, H, W) scores} or, from a model in `label_outputs` mode (which the trainer's
    evaluation turns on, see `accepts_label_maps`), {"sem_seg_labels": (H, W) argmax of those, "num_classes": T}.
    """

    accepts_label_maps = True

    def process(self, inputs, outputs):
        outputs = [self.scores_or_labels(output) for output in outputs]
        for output in outputs:
            num_scores = output["num_classes"]
            if num_scores != self._num_classes:
                raise ValueError(
                    f"the model scores {num_scores} classes but {self._dataset_name} has {self._num_classes}: a "
                    f"closed-vocabulary model needs MODEL.SEM_SEG_HEAD.NUM_CLASSES {self._num_classes} (and weights "
                    "trained for them), an open-vocabulary one the dataset's vocabulary")
        try:
            super().process(inputs, outputs)
        except (OSError, SyntaxError, ValueError, zlib.error):
            for item in inputs:  # which label file is bad: reading it again raises the error that names it
                read_image(self.input_file_to_gt_file[item["file_name"]], format=None)
            raise

    @staticmethod
    def scores_or_labels(output):
        """{"sem_seg": scores, or a stand-in whose argmax(dim=0) is the label map; "num_classes": T}."""
        if LABELS_KEY in output:
            return {"sem_seg": _ArgmaxOf(output[LABELS_KEY]), "num_classes": output["num_classes"]}
        return {"sem_seg": output["sem_seg"], "num_classes": output["sem_seg"].shape[0]}
