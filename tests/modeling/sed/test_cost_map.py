"""The cost map: cosine similarities of pixels and prompts, the same in training and (chunked) inference."""

import torch
import torch.nn.functional as F

from sed.modeling.sed import cost_map
from sed.modeling.sed.cost_map import compute_cost_map


def _reference(dense, text):
    return torch.einsum("bchw,tpc->bpthw", F.normalize(dense, dim=1), F.normalize(text, dim=-1))


def test_equals_cosine_similarities_in_training_and_inference(monkeypatch):
    monkeypatch.setattr(cost_map, "TEXT_CHUNK_CLASSES", 4)  # inference then runs 3 chunks, the last partial
    g = torch.Generator().manual_seed(0)
    dense = torch.randn(2, 16, 5, 7, generator=g, requires_grad=True)
    text = torch.randn(10, 3, 16, generator=g)
    reference = _reference(dense, text)
    with torch.no_grad():
        inference = compute_cost_map(dense, text)
    training = compute_cost_map(dense, text)
    for cost in (inference, training):
        assert cost.shape == (2, 3, 10, 5, 7)
        torch.testing.assert_close(cost, reference, atol=1e-6, rtol=1e-6)
    training.sum().backward()  # the training path stays differentiable
    assert dense.grad is not None and torch.isfinite(dense.grad).all()


def test_stored_class_major_so_per_class_maps_are_a_view():
    with torch.no_grad():
        cost = compute_cost_map(torch.randn(2, 8, 3, 3), torch.randn(5, 4, 8))
    per_class = cost.transpose(1, 2).reshape(10, 4, 3, 3)
    assert per_class.data_ptr() == cost.data_ptr()
