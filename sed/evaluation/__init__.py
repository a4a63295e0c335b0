"""Evaluation of semantic segmentation benchmarks."""
from .background_sem_seg_evaluation import BackgroundSemSegEvaluator
from .build import build_sem_seg_evaluator

__all__ = ["BackgroundSemSegEvaluator", "build_sem_seg_evaluator"]
