"""detectron2's SemSegEvaluator, refusing predictions over another number of classes than the dataset's."""
import zlib

from detectron2.evaluation import SemSegEvaluator

from ..data.image_io import read_image

__all__ = ["CheckedSemSegEvaluator"]


class CheckedSemSegEvaluator(SemSegEvaluator):
    """detectron2's SemSegEvaluator, which takes the argmax of whatever scores it gets: scores over fewer classes
    than the dataset's give a wrong mIoU silently, over more a reshape error. This one first checks that every
    prediction scores exactly the dataset's `stuff_classes`, and says what to set when it does not. A label file
that cannot be read is named (`sed.data.image_io.ImageFileError`)."""

    def process(self, inputs, outputs):
        for output in outputs:
            num_scores = output["sem_seg"].shape[0]
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
