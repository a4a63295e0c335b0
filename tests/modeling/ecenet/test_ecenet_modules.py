"""Shapes and hand-checked values of the ECENet head's modules (tiny sizes, CPU)."""

import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import ShapeSpec

from sed.modeling.ecenet.aggregation import FusionProjection, GhostUpsampler
from sed.modeling.ecenet.class_extraction import ClassMaskLearner, ClassTokenEmbedding, class_pool_size
from sed.modeling.ecenet.feature_reconstruction import FeatureReconstruction
from sed.modeling.ecenet.head import ECENetHead
from sed.modeling.ecenet.semantic_attention import GatedTokenUpdater, SemanticAttention

SWIN_B_SHAPES = {f"res{i + 2}": ShapeSpec(channels=128 * 2**i, stride=4 * 2**i) for i in range(4)}


def test_feature_reconstruction_shapes():
    fr = FeatureReconstruction(16)
    out, diverse = fr(torch.randn(2, 16, 5, 7))
    assert out.shape == (2, 16, 5, 7) and diverse.shape == (2, 8, 5, 7)
    # the LayerNorm is over channels: every position has zero mean and unit variance at initialisation
    torch.testing.assert_close(out.mean(1), torch.zeros(2, 5, 7), atol=1e-5, rtol=0)


def test_feature_reconstruction_reweights_the_diverse_half_without_sigmoid():
    fr = FeatureReconstruction(8).eval()
    with torch.no_grad():  # MLP weights whose output is -|sum of the channel means| for every channel
        fr.reweight[0].weight.copy_(torch.tensor([[1.0] * 4, [-1.0] * 4]))
        fr.reweight[2].weight.fill_(-1.0)
    x = torch.randn(1, 8, 4, 4)
    _, diverse = fr(x)
    plain = fr.diverse(fr.intrinsic(x))
    weights = -plain.mean(dim=(2, 3)).sum().abs()
    assert weights < 0  # a sigmoid would keep the weights in (0, 1)
    torch.testing.assert_close(diverse, plain * weights)


@pytest.mark.parametrize("num_classes,size", [(150, 13), (59, 7), (60, 7), (19, 5), (4, 3)])
def test_class_pool_size_is_odd_root(num_classes, size):
    assert class_pool_size(num_classes) == size


def test_mask_learner_shapes():
    assert ClassMaskLearner(16, 5, groups=4)(torch.randn(2, 16, 3, 4)).shape == (2, 5, 3, 4)


def test_class_embeddings_are_a_linear_map_of_hand_pooled_masks():
    masks = torch.zeros(1, 2, 4, 4)
    masks[0, 0, :2, :2] = 1  # class 0: the top-left quadrant
    masks[0, 1] = torch.arange(16.0).view(4, 4)  # class 1: value 4 * row + column
    emb = ClassTokenEmbedding(channels=3, pool_sizes=(1, 2, 3))
    # adaptive 3x3 pooling of 4 pixels uses the overlapping bins [0, 2), [1, 3), [2, 4)
    expected = torch.tensor(
        [
            [0.25, 1, 0, 0, 0, 1, 0.5, 0, 0.5, 0.25, 0, 0, 0, 0],
            [7.5, 2.5, 4.5, 10.5, 12.5, 2.5, 3.5, 4.5, 6.5, 7.5, 8.5, 10.5, 11.5, 12.5],
        ]
    )[None]
    torch.testing.assert_close(emb.pool(masks), expected)
    torch.testing.assert_close(emb(masks), expected @ emb.proj.weight.T + emb.proj.bias)


def test_class_embeddings_pool_logits_not_probabilities():
    emb = ClassTokenEmbedding(channels=4, pool_sizes=(1,))
    masks = torch.full((1, 1, 2, 2), -3.0)
    assert emb.pool(masks).item() == -3.0


def test_semantic_attention_shapes():
    block = SemanticAttention(16, num_heads=4)
    out, masks = block(torch.randn(2, 16, 5, 6), torch.randn(2, 7, 16))
    assert out.shape == (2, 16, 5, 6) and masks.shape == (2, 7, 5, 6)


def test_inverted_attention_changes_weights_but_not_masks():
    torch.manual_seed(0)
    released = SemanticAttention(16, num_heads=4, inverted_attention=True).eval()
    plain = SemanticAttention(16, num_heads=4, inverted_attention=False).eval()
    plain.load_state_dict(released.state_dict())
    x, tokens = torch.randn(1, 16, 3, 3), torch.randn(1, 5, 16)

    scores, _ = released.scores(x, tokens)
    assert scores.shape == (1, 4, 9, 5)
    inverted = released.attention_weights(scores)
    torch.testing.assert_close(inverted, F.softmax(scores.amax(-1, keepdim=True) - scores, dim=-1))
    torch.testing.assert_close(plain.attention_weights(scores), scores.softmax(-1))
    assert not torch.allclose(inverted, scores.softmax(-1))

    out_released, masks_released = released(x, tokens)
    out_plain, masks_plain = plain(x, tokens)
    torch.testing.assert_close(masks_released, masks_plain)
    torch.testing.assert_close(masks_released, scores.mean(1).transpose(1, 2).reshape(1, 5, 3, 3))
    assert not torch.allclose(out_released, out_plain)


def test_gated_token_updater_shapes_and_relu():
    tokens = GatedTokenUpdater(16)(torch.randn(2, 7, 16), torch.randn(2, 7, 16))
    assert tokens.shape == (2, 7, 16) and (tokens >= 0).all()


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_ghost_upsampler_shapes(factor):
    up = GhostUpsampler(8, factor)
    assert len(up) == factor.bit_length() - 1
    assert up(torch.randn(2, 8, 3, 5)).shape == (2, 8, 3 * factor, 5 * factor)


def test_ghost_upsampler_rejects_non_power_of_two():
    with pytest.raises(ValueError):
        GhostUpsampler(8, 3)


def test_fusion_projection_resizes_to_the_first_level():
    proj = FusionProjection(3, 8)
    out = proj([torch.randn(2, 8, 10, 12), torch.randn(2, 8, 10, 12), torch.randn(2, 8, 8, 16)])
    assert out.shape == (2, 8, 10, 12) and (out >= 0).all()


def test_head_output_shapes():
    shapes = {f"res{i + 2}": ShapeSpec(channels=16 * 2**i, stride=4 * 2**i) for i in range(4)}
    head = ECENetHead(shapes, num_classes=5, channels=32, norm="BN")
    features = {name: torch.randn(2, s.channels, 40 // s.stride, 48 // s.stride) for name, s in shapes.items()}
    out = head(features)
    assert out["logits"].shape == (2, 5, 10, 12) and out["aux_masks"].shape == (2, 5, 10, 12)
    assert [d.shape for d in out["diverse"]] == [(2, 8, 10, 12), (2, 16, 5, 6), (2, 32, 2, 3), (2, 64, 1, 1)]


def test_head_module_names_match_the_release():
    head = ECENetHead(SWIN_B_SHAPES, num_classes=150)
    top = {name.split(".")[0] for name, _ in head.named_parameters()}
    assert top == {
        "layer_slcts",
        "laterals",
        "learner",
        "token_emb",
        "transfer",
        "gated_tokens",
        "ghost_up_layers",
        "proj",
        "conv_seg",
        "trans",
    }
    assert (len(head.layer_slcts), len(head.laterals), len(head.token_emb)) == (4, 4, 4)
    assert (len(head.transfer), len(head.gated_tokens), len(head.ghost_up_layers)) == (3, 3, 3)
    assert head.token_emb[0].proj.in_features == 13**2 + 50


@pytest.mark.parametrize("num_classes,params", [(150, 9_888_428), (59, 9_695_478), (19, 9_640_102)])
def test_head_parameter_count_matches_the_spec(num_classes, params):
    """Spec: about 9.89 M (K=150), 9.70 M (K=59), 9.64 M (K=19) with Swin-B channels; exact values by hand in
    docs/ECENET.md."""
    head = ECENetHead(SWIN_B_SHAPES, num_classes=num_classes)
    assert sum(p.numel() for p in head.parameters()) == params
