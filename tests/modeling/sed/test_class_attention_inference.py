"""The class attention's inference path (`transform_`, `add_transformed_`) computes what `transform` computes."""

import pytest
import torch

from sed.modeling.sed.class_attention import ClassAttentionLayer, LinearAttention

# fp32: measured max |difference| 5.7e-6 over these shapes, with outputs up to 23 (2.5e-7 of the largest): the
# products and the feature map round differently from `transform`'s (one fused q/k/v product, exp for elu + 1).
ATOL, RTOL = 1e-5, 1e-5
# bf16 autocast runs the products with 8-bit mantissas; measured max |difference| to fp32 0.19 (`transform` under
# autocast: 0.18), outputs up to 23.
BF16_ATOL, BF16_RTOL = 0.5, 0.05

# (sequences S, classes T, channels C, heads): one class, odd head counts and head widths, SED-B's stage 3.
SHAPES = [(5, 1, 8, 4), (3, 7, 12, 3), (4, 9, 10, 5), (3, 6, 6, 2), (2, 150, 32, 4)]


def make_layer(channels, heads, seed=0):
    torch.manual_seed(seed)
    layer = ClassAttentionLayer(channels, heads, pooling_size=(1, 1)).eval()
    with torch.no_grad():  # trained norms and biases are not 1 and 0
        for param in layer.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    return layer


@pytest.mark.parametrize("s, t, c, heads", SHAPES)
def test_transform_in_place_equals_transform(s, t, c, heads):
    layer = make_layer(c, heads)
    seq = torch.randn(s, t, c) * 2
    with torch.no_grad():
        expected = layer.transform(seq)
    out = layer.transform_(seq.clone())
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("s, t, c, heads", SHAPES)
def test_add_transformed_updates_a_view_of_class_maps(s, t, c, heads):
    """maps (T, C, L) is a strided view of the decoder's class maps: only its locations change."""
    layer = make_layer(c, heads, seed=1)
    columns = torch.randn(t, c, s + 3)
    maps = columns[:, :, 1 : s + 1]
    with torch.no_grad():
        expected = columns.clone()
        expected[:, :, 1 : s + 1] += layer.transform(maps.permute(2, 0, 1)).permute(1, 2, 0)
    layer.add_transformed_(maps)
    torch.testing.assert_close(columns, expected, atol=ATOL, rtol=RTOL)
    assert torch.equal(columns[:, :, [0, s + 1, s + 2]], expected[:, :, [0, s + 1, s + 2]])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("s, t, c, heads", [(4, 1, 8, 4), (3, 7, 12, 3), (2, 150, 32, 4)])
def test_bf16_autocast_stays_finite_and_close(s, t, c, heads, dtype):
    """TEST.PRECISION bf16 runs the decoder under CPU autocast, with class maps in float32 or bfloat16."""
    layer = make_layer(c, heads, seed=2)
    seq = torch.randn(s, t, c) * 2
    with torch.no_grad():
        expected = layer.transform(seq)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer.transform_(seq.to(dtype))
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), expected, atol=BF16_ATOL, rtol=BF16_RTOL)


def test_feature_map_is_elu_plus_one():
    """Exact for x >= 0; for x < 0 exp(x), within one float32 step of 1 of elu(x) + 1 (which rounds twice)."""
    x = torch.cat([torch.linspace(-30, 30, 100_001), torch.tensor([0.0, -0.0, 1e-30, -1e-30])])
    expected = torch.nn.functional.elu(x) + 1
    out = LinearAttention.feature_map_(x.clone())
    assert torch.equal(out[x >= 0], expected[x >= 0])
    torch.testing.assert_close(out, expected, atol=2**-24, rtol=0)
    torch.testing.assert_close(out.double(), torch.nn.functional.elu(x.double()) + 1, atol=1e-7, rtol=1e-6)


def test_inference_path_does_not_track_gradients():
    layer = make_layer(8, 4)
    seq = torch.randn(3, 5, 8)
    assert not layer.transform_(seq.clone()).requires_grad
    assert layer.transform(seq).requires_grad  # training's path keeps autograd
