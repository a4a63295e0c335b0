"""The model protocol's methods: what shared code may ask of any model."""

import pytest
import torch

from sed.modeling.protocol import SegmentationModel, capabilities, inference_options, unwrap_model


def test_inference_options_apply_for_the_block_and_only_what_the_model_supports():
    class Model(SegmentationModel, torch.nn.Module):
        supports_fast_inference = True
        fast_inference = False

    model = Model()
    with model.inference_options(fast=True, labels_only=True):
        assert model.fast_inference is True and not hasattr(model, "labels_only")
    assert model.fast_inference is False
    with pytest.raises(ValueError, match="takes no vocabulary"):
        model.set_vocabulary(["cat"])


def test_inference_options_leave_a_model_without_the_protocol_alone():
    other = torch.nn.Linear(1, 1)
    with inference_options(other, fast=True, labels_only=True) as model:
        assert model is other and not hasattr(other, "fast_inference")


def test_unwrap_model_and_capabilities_see_through_data_parallel():
    class Model(SegmentationModel, torch.nn.Module):
        open_vocabulary = True

    model = Model()
    wrapped = torch.nn.DataParallel(model)
    assert unwrap_model(wrapped) is model and capabilities(wrapped) is Model
    wrapped.module.set_vocabulary(("cat", "dog"))
    assert model.test_class_names == ["cat", "dog"]
