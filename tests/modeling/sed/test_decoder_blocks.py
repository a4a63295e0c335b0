import pytest
import torch

from sed.modeling.sed.class_attention import LinearAttention
from sed.modeling.sed.decoder import FusionStage


def make_stage(seed=0):
    torch.manual_seed(seed)
    stage = FusionStage(16, 16, guidance_channels=4, kernel_size=3, num_heads=4, pooling_size=(2, 2)).eval()
    with torch.no_grad():  # non-trivial weights: biases and layer scales away from their initial values
        for param in stage.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return stage


def test_fusion_with_split_weights_equals_the_block_on_the_concatenation():
    stage = make_stage()
    maps, attended = torch.randn(2, 3, 16, 8, 8), torch.randn(2, 3, 16, 4, 4)
    appearance, cost = torch.randn(2, 4, 16, 16), torch.randn(2, 3, 4, 16, 16)
    fused = stage.fuse(maps, attended, stage.appearance_response(appearance).unsqueeze(1), cost)
    up = stage.up(
        (
            maps
            + torch.nn.functional.interpolate(
                attended.flatten(0, 1), size=(8, 8), mode="bilinear", align_corners=True
            ).view_as(maps)
        ).flatten(0, 1)
    )
    concatenated = torch.cat([up, appearance.repeat_interleave(3, 0), cost.flatten(0, 1)], dim=1)
    torch.testing.assert_close(fused.flatten(0, 1), stage.conv(concatenated), atol=1e-5, rtol=1e-5)


def test_linear_attention_matches_its_definition():
    """sum_s phi(q).phi(k_s) v_s / (sum_s phi(q).phi(k_s) + eps), phi = elu + 1, eps 1e-6 (in float64, so that the
    tolerance sees eps: the same formula with 7e-6 fails it)."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, n, 4, 8, dtype=torch.float64) for n in (5, 7, 7))
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    numerator = torch.einsum("nlhd,nshd,nshv->nlhv", phi_q, phi_k, v)
    denominator = torch.einsum("nlhd,nshd->nlh", phi_q, phi_k)[..., None]
    out = LinearAttention()(q, k, v)
    torch.testing.assert_close(out, numerator / (denominator + 1e-6), atol=0, rtol=1e-12)
    assert not torch.allclose(out, numerator / (denominator + 7e-6), atol=0, rtol=1e-12)
    torch.testing.assert_close(
        LinearAttention()(q.float(), k.float(), v.float()),
        (numerator / (denominator + 1e-6)).float(),
        atol=1e-6,
        rtol=1e-5,
    )


def test_stage_is_equivariant_to_class_order():
    stage = make_stage()
    x, appearance, cost = torch.randn(1, 6, 16, 8, 8), torch.randn(1, 4, 16, 16), torch.randn(1, 6, 4, 16, 16)
    order = torch.randperm(6)
    torch.testing.assert_close(
        stage(x, appearance, cost)[:, order], stage(x[:, order], appearance, cost[:, order]), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "rows_of_a_buffer"])
def test_convnext_inference_in_place_equals_forward(monkeypatch, fused, layout):
    """Inference adds the ConvNeXt block's branch into the maps in place (the MLP as oneDNN's fused linear
    layers where available, else as in `forward`): `forward`'s output to float32 rounding, in any layout the
    decoder hands it, including rows of a larger buffer."""
    from sed.modeling.sed import fused_convnext

    if not fused:
        monkeypatch.setattr(fused_convnext, "_LINEAR", None)
    elif fused_convnext._LINEAR is None:
        pytest.skip("this PyTorch has no oneDNN fused linear")
    block = make_stage().cnext
    maps = torch.randn(5, 16, 7, 9)
    with torch.no_grad():
        reference = block(maps)
        if layout == "channels_last":
            maps = maps.contiguous(memory_format=torch.channels_last)
        buffer = torch.cat([torch.zeros(1, 16, 7, 9), maps, torch.zeros(1, 16, 7, 9)])
        target = buffer[1:6] if layout == "rows_of_a_buffer" else maps
        out = block.add_residual_(target)
    assert out is target
    torch.testing.assert_close(out, reference, atol=2e-6, rtol=1e-5)
    if layout == "rows_of_a_buffer":
        assert not buffer[0].any() and not buffer[6].any()


def test_convnext_inference_under_bf16_autocast_stays_near_fp32():
    block = make_stage().cnext
    maps = torch.randn(3, 16, 8, 8)
    with torch.no_grad():
        reference = block(maps)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block.add_residual_(maps.clone())
    assert out.dtype == torch.float32
    assert (out - reference).abs().max() <= 3e-2 * reference.abs().max()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(8, 8), (5, 7), (1, 1)])
def test_inference_fusion_with_composed_upsampling_equals_the_layers(channels_last, size):
    """Inference composes the 2x2 transposed convolution with the fusion's 3x3 convolution (one 2x2 convolution into
    four sub-pixel phases, the upsampling's bias added as its own term): the layers' output to float32 rounding,
    at the borders too, in both layouts, and again after the weights change (cached kernels)."""
    stage = make_stage()
    stage.channels_last_inference = channels_last
    h, w = size
    maps, attended = torch.randn(2, 3, 16, h, w), torch.randn(2, 3, 16, h, w)
    appearance, cost = torch.randn(2, 4, 2 * h, 2 * w), torch.randn(2, 3, 4, 2 * h, 2 * w)
    for _ in range(2):
        response = stage.appearance_response(appearance).unsqueeze(1)
        layers = stage.fuse(maps, attended, response, cost)  # autograd on: the layers as they are
        with torch.no_grad():
            composed = stage.fuse(maps, attended, response, cost)
        torch.testing.assert_close(composed, layers, atol=1e-5, rtol=1e-5)
        if channels_last:  # the layout the rest of the fusion runs in
            assert composed.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            stage.up.weight.add_(torch.randn_like(stage.up.weight))
            stage.up.bias.add_(1.0)
