from .mask_former_semantic_dataset_mapper import MaskFormerSemanticDatasetMapper
from .sem_seg_test_dataset_mapper import SemSegTestDatasetMapper

__all__ = ["MaskFormerSemanticDatasetMapper", "SemSegTestDatasetMapper"]
