"""The cost embedding through the DFT (TEST.SPECTRAL_COST_EMBEDDING) computes conv2d's convolution."""

import pytest
import torch
from torch import nn

from sed.modeling.sed.spectral_conv import SpectralConvolution, spectral_conv_supported
from tests.modeling.sed.test_decoder_chunking import assert_variant_keeps_outputs, make_decoder


def exact_and_float32(conv, x):
    """(float64 convolution, conv2d's float32 result, the DFT's float32 result)."""
    with torch.no_grad():
        exact = nn.functional.conv2d(
            x.double(),
            conv.weight.double(),
            None if conv.bias is None else conv.bias.double(),
            padding=conv.padding,
        )
        return exact, conv(x), SpectralConvolution()(conv, x)


def test_sed_b_cost_embedding_is_as_exact_as_conv2d():
    """SED-B's conv1 (80 -> 128, 7x7) on 24x24 cost maps (768 px): no further from the exact convolution than
    conv2d's own float32 rounding, which is what makes it a speed change, not a different model."""
    torch.manual_seed(0)
    conv = nn.Conv2d(80, 128, 7, padding=3)
    x = torch.rand(6, 80, 24, 24) * 0.6 - 0.2  # cosine similarities of CLIP embeddings
    exact, direct, spectral = exact_and_float32(conv, x)
    direct_error = (direct.double() - exact).abs().max().item()
    spectral_error = (spectral.double() - exact).abs().max().item()
    assert spectral.dtype == torch.float32 and spectral.is_contiguous()
    assert spectral_error <= 2 * direct_error, (spectral_error, direct_error)


@pytest.mark.parametrize(
    "channels_in,channels_out,kernel,size,bias",
    [(5, 7, 7, (6, 6), True), (3, 4, 3, (17, 30), True), (4, 6, 5, (31, 8), False), (2, 3, 7, (1, 1), True)],
)
def test_other_shapes_sizes_and_no_bias(channels_in, channels_out, kernel, size, bias):
    """Cost maps of other aspect ratios (other image sizes), other odd kernels, maps smaller than the kernel."""
    torch.manual_seed(1)
    conv = nn.Conv2d(channels_in, channels_out, kernel, padding=kernel // 2, bias=bias)
    x = torch.randn(3, channels_in, *size)
    exact, _, spectral = exact_and_float32(conv, x)
    torch.testing.assert_close(spectral.double(), exact, atol=1e-5, rtol=0)


def test_rows_do_not_depend_on_the_batch():
    """Each map's result is the same alone or among others (batches equal images one at a time)."""
    torch.manual_seed(2)
    conv = nn.Conv2d(6, 8, 7, padding=3)
    x = torch.randn(5, 6, 12, 12)
    spectral = SpectralConvolution()
    with torch.no_grad():
        whole = spectral(conv, x)
        rows = torch.cat([spectral(conv, x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(rows, whole, atol=1e-6, rtol=0)


def test_new_weights_are_transformed_again():
    """Loading other weights into the module (a checkpoint after a first inference) takes effect."""
    torch.manual_seed(3)
    conv = nn.Conv2d(4, 5, 7, padding=3)
    x = torch.randn(2, 4, 10, 10)
    spectral = SpectralConvolution()
    with torch.no_grad():
        spectral(conv, x)
        conv.load_state_dict({"weight": torch.randn_like(conv.weight), "bias": torch.randn_like(conv.bias)})
        torch.testing.assert_close(spectral(conv, x), conv(x), atol=1e-5, rtol=1e-5)
        bigger = torch.randn(2, 4, 14, 9)  # another map size: other transforms
        torch.testing.assert_close(spectral(conv, bigger), conv(bigger), atol=1e-5, rtol=1e-5)


def test_bf16_maps_and_autocast_run_in_float32():
    """TEST.PRECISION bf16 hands it bfloat16 cost maps under autocast: it computes in float32 (cheaper than
    conv2d in bfloat16 here, and as accurate as float32 conv2d on the same maps)."""
    torch.manual_seed(4)
    conv = nn.Conv2d(6, 8, 7, padding=3)
    x = torch.randn(3, 6, 12, 12).bfloat16()
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert spectral_conv_supported(conv, x)
            out = SpectralConvolution()(conv, x)
        reference = conv(x.float())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)


def test_applies_only_to_cpu_inference():
    conv = nn.Conv2d(4, 5, 7, padding=3)
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert spectral_conv_supported(conv, x)
        assert not spectral_conv_supported(conv, x.double())
        for other in (
            nn.Conv2d(4, 5, 7, padding=3, stride=2),
            nn.Conv2d(4, 5, 7, padding=2),
            nn.Conv2d(4, 5, 6, padding=3),
            nn.Conv2d(4, 5, 7, padding=3, padding_mode="reflect"),
        ):
            assert not spectral_conv_supported(other, x)
    assert not spectral_conv_supported(conv, x)  # autograd: training runs conv2d


@pytest.mark.parametrize("fast", [False, True])
def test_decoder_outputs_and_kept_classes_stay(fast):
    """The decoder with the spectral cost embedding (default) against conv2d: the same kept classes and
    probabilities to float rounding (1e-6), in full and fast inference."""
    decoder = make_decoder((1, 1))
    assert decoder.spectral_embedding is not None

    def use_spectral(spectral):
        decoder.spectral_embedding = SpectralConvolution() if spectral else None

    assert_variant_keeps_outputs(decoder, use_spectral, fast)


def test_config_key_reaches_the_model_and_probabilities_stay_within_1e6(parity, monkeypatch):
    """On by default; the parity model (its 768 px input: 24x24 cost maps) then gives the probabilities of conv2d
    (the key off) to float32 rounding, and the same classes in fast inference."""
    from sed.modeling.sed import spectral_conv

    calls = []
    original = spectral_conv.SpectralConvolution.__call__
    monkeypatch.setattr(spectral_conv.SpectralConvolution, "__call__", lambda *a: calls.append(1) or original(*a))
    outputs = {}
    for key in ("True", "False"):
        for fast in (False, True):
            model = parity.build(fast, extra=["TEST.SPECTRAL_COST_EMBEDDING", key])
            assert (model.sem_seg_head.predictor.transformer.spectral_embedding is not None) == (key == "True")
            calls.clear()
            with torch.no_grad():
                outputs[key, fast] = model([parity.input()])[0]["sem_seg"]
            assert bool(calls) == (key == "True")
    for fast in (False, True):
        spectral, conv2d = outputs["True", fast], outputs["False", fast]
        assert torch.equal(spectral > 0, conv2d > 0)  # fast inference: the same kept classes (others are 0)
        assert (spectral - conv2d).abs().max() <= 1e-6
