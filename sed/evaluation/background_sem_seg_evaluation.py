"""PAS-20b evaluation: 20 PASCAL VOC classes plus background, predicted with a vocabulary that names what
"background" is made of."""

import torch

from ..modeling.postprocess import LABELS_KEY
from .sem_seg_evaluation import CheckedSemSegEvaluator

__all__ = ["BackgroundSemSegEvaluator"]


class BackgroundSemSegEvaluator(CheckedSemSegEvaluator):
    """
    The semantic segmentation evaluator for a dataset whose last class is "background" (evaluator_type
    "sem_seg_background", e.g. voc_2012_test_background_sem_seg: 20 VOC classes, then "background" = label 20).

    An open-vocabulary model cannot recognise "background" from its name, so it is given the vocabulary of
    the dataset's `class_json` (voc20b.json: the 20 VOC classes, then 39 PASCAL Context classes such as "wall",
    "sky", "grass" that make up VOC's background) and outputs `sem_seg` of shape (T, H, W), T = 59. The
    prediction of a pixel is its argmax; any argmax >= 20 (one of the background classes) counts as background,
    label 20. mIoU is then over the 21 classes, with ignore 255 as usual.

    Implemented by keeping scores 0..19 and replacing the others by their per-pixel maximum as channel 20:
    the argmax of the result is exactly the mapped argmax (ties resolve to the lower index either way).
    """

    def __init__(self, dataset_name, distributed=True, output_dir=None, **kwargs):
        super().__init__(dataset_name, distributed=distributed, output_dir=output_dir, **kwargs)
        # stuff_classes ends with "background"; everything before it is a foreground class.
        self._background_label = self._num_classes - 1

    def process(self, inputs, outputs):
        """outputs: dicts with "sem_seg" (T, H, W), T >= 21 scores (the first 20 are the VOC classes), or the
        label map of such scores (see `CheckedSemSegEvaluator`)."""
        merged = []
        for output in outputs:
            if LABELS_KEY in output:
                self._check_background_scores(output["num_classes"])
                # argmax >= 20 is background: the same as the argmax of the merged scores (see the class doc)
                merged.append(
                    dict(
                        output,
                        **{
                            LABELS_KEY: output[LABELS_KEY].clamp(max=self._background_label),
                            "num_classes": self._num_classes,
                        },
                    )
                )
            else:
                merged.append({"sem_seg": self.merge_background(output["sem_seg"])})
        super().process(inputs, merged)

    def _check_background_scores(self, num_scores):
        b = self._background_label
        if num_scores <= b:
            raise ValueError(
                f"{self._dataset_name}: expected scores for at least {b + 1} classes "
                f"({b} foreground, then background ones), got {num_scores}"
            )

    def merge_background(self, scores: torch.Tensor) -> torch.Tensor:
        """(T, H, W) scores over the model's vocabulary -> (21, H, W) scores over the evaluated classes."""
        b = self._background_label
        self._check_background_scores(scores.shape[0])
        return torch.cat([scores[:b], scores[b:].amax(dim=0, keepdim=True)])
