"""Evaluation of semantic segmentation benchmarks."""

from .background_sem_seg_evaluation import BackgroundSemSegEvaluator
from .build import build_sem_seg_evaluator
from .sem_seg_evaluation import CheckedSemSegEvaluator

__all__ = ["BackgroundSemSegEvaluator", "CheckedSemSegEvaluator", "build_sem_seg_evaluator"]
