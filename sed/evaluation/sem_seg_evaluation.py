"""detectron2's SemSegEvaluator, refusing predictions over another number of classes than the dataset's,
non-finite scores and ground truth that is not a label map of the dataset's classes, and taking label maps as
well as scores."""

import numpy as np
from detectron2.evaluation import SemSegEvaluator

from ..data.label_maps import read_label_map
from ..modeling.postprocess import LABELS_KEY, NonFiniteOutputError, output_is_finite

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
    prediction scores exactly the dataset's `stuff_classes`, and says what to set when it does not. Scores that
    hold NaN or Inf raise `NonFiniteOutputError` naming the image (their argmax would count as a confident class).
    A label file that cannot be read, holds a value that is neither a class id nor the ignore label (which
    detectron2 would count in a wrong cell of the confusion matrix), or is not of its prediction's size raises
    `sed.data.image_io.ImageFileError` naming the file.

    A prediction is {"sem_seg": (T, H, W) scores} or, from a model in `label_outputs` mode (which the trainer's
    evaluation turns on, see `accepts_label_maps`), {"sem_seg_labels": (H, W) argmax of those, "num_classes": T}.
    """

    accepts_label_maps = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sem_seg_loading_fn = self._read_ground_truth
        self._prediction_sizes = {}  # ground-truth file -> (H, W) of the prediction it is compared with

    def _read_ground_truth(self, path, dtype=int):
        label = read_label_map(path, self._num_classes, self._ignore_label, self._prediction_sizes.pop(path, None))
        return np.asarray(label, dtype=dtype)

    def process(self, inputs, outputs):
        for item, output in zip(inputs, outputs):
            if not output_is_finite(output):
                raise NonFiniteOutputError(item["file_name"])
        outputs = [self.scores_or_labels(output) for output in outputs]
        for output in outputs:
            num_scores = output["num_classes"]
            if num_scores != self._num_classes:
                raise ValueError(
                    f"the model scores {num_scores} classes but {self._dataset_name} has {self._num_classes}: a "
                    f"closed-vocabulary model needs MODEL.SEM_SEG_HEAD.NUM_CLASSES {self._num_classes} (and weights "
                    "trained for them), an open-vocabulary one the dataset's vocabulary"
                )
        for item, output in zip(inputs, outputs):
            self._prediction_sizes[self.input_file_to_gt_file[item["file_name"]]] = tuple(output["size"])
        super().process(inputs, outputs)

    @staticmethod
    def scores_or_labels(output):
        """{"sem_seg": scores, or a stand-in whose argmax(dim=0) is the label map; "num_classes": T; "size": (H, W)}."""
        if LABELS_KEY in output:
            return {
                "sem_seg": _ArgmaxOf(output[LABELS_KEY]),
                "num_classes": output["num_classes"],
                "size": output[LABELS_KEY].shape,
            }
        return {
            "sem_seg": output["sem_seg"],
            "num_classes": output["sem_seg"].shape[0],
            "size": output["sem_seg"].shape[1:],
        }
