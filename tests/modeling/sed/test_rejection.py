import torch

from sed.modeling.sed.rejection import category_rejection


def test_keeps_every_class_that_is_top_k_somewhere():
    logits = torch.full((5, 2, 2), -10.0)
    logits[3, 0, 0] = 5  # class 3 wins one pixel
    logits[1, :, :] = 1  # class 1 is second everywhere, first elsewhere
    logits[4, 1, 1] = 0.5
    assert category_rejection(logits, 1).tolist() == [1, 3]
    kept2 = category_rejection(logits, 2).tolist()
    assert {1, 3, 4} <= set(kept2) and kept2 == sorted(kept2)


def test_topk_at_least_the_vocabulary_keeps_all():
    logits = torch.randn(4, 3, 3)
    assert category_rejection(logits, 4).tolist() == [0, 1, 2, 3]
    assert category_rejection(logits, 100).tolist() == [0, 1, 2, 3]
