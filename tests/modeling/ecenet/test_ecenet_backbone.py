"""The timm Swin backbone: any input size, the original (pad-then-shift) window attention, timm's weights."""

import pytest
import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer

from sed.modeling.ecenet.backbone import TimmSwinBackbone, swin_block_forward

TINY = dict(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), window_size=4, drop_path_rate=0.0)


def tiny_timm_swin():
    return SwinTransformer(strict_img_size=False, always_partition=True, num_classes=0, **TINY)


@pytest.mark.parametrize("height,width", [(64, 64), (70, 90), (30, 17)])
def test_any_input_size_gives_ceil_strided_levels(height, width):
    backbone = TimmSwinBackbone(**TINY).eval()
    out = backbone(torch.randn(1, 3, height, width))
    size = (-(-height // 4), -(-width // 4))
    for name in ("res2", "res3", "res4", "res5"):
        spec = backbone.output_shape()[name]
        assert out[name].shape == (1, spec.channels, *size), name
        size = (-(-size[0] // 2), -(-size[1] // 2))
    assert [s.stride for s in backbone.output_shape().values()] == [4, 8, 16, 32]


def test_swin_b_output_shape():
    with torch.device("meta"):
        backbone = TimmSwinBackbone()
    shapes = backbone.output_shape()
    assert [(s.channels, s.stride) for s in shapes.values()] == [(128, 4), (256, 8), (512, 16), (1024, 32)]
    assert backbone.layers[2].blocks[1].shift_size == (6, 6) and len(backbone.layers[2].blocks) == 18
    assert backbone.layers[3].blocks[1].drop_path1.drop_prob == pytest.approx(0.3)


def test_stages_match_timm_when_sizes_are_window_multiples():
    """No padding needed (128 px: 32, 16, 8, 4 tokens): the stages are timm's own forward, plus output norms."""
    backbone = TimmSwinBackbone(**TINY).eval()
    timm_swin = tiny_timm_swin().eval()
    timm_swin.load_state_dict(backbone.state_dict(), strict=False)
    x = torch.randn(1, 3, 128, 128)
    ours = backbone(x)
    theirs = timm_swin.forward_intermediates(x, intermediates_only=True)
    for i, feature in enumerate(ours.values()):
        norm = getattr(backbone, f"norm{i}")
        expected = norm(theirs[i].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        torch.testing.assert_close(feature, expected, atol=1e-5, rtol=1e-4)


def test_block_pads_before_the_shift():
    """An 11x7 map and window 4 (shift 2): the block equals timm's block on the map zero-padded to 12x8, cropped.

    (The pad is zero after norm1 too, whose bias starts at 0.) timm's dynamic-size path shifts before padding,
    which puts the map's last row and first row in one window region: a different result.
    """
    torch.manual_seed(0)
    block = tiny_timm_swin().layers[2].blocks[1].eval()
    assert block.shift_size == (2, 2) and block.window_size == (4, 4)
    x = torch.randn(2, 11, 7, block.dim)
    padded = F.pad(x, (0, 0, 0, 1, 0, 1))
    ours = swin_block_forward(block, x)
    torch.testing.assert_close(ours, block(padded)[:, :11, :7], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(block(x), ours, atol=1e-4)
