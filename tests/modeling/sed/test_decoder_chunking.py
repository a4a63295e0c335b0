"""Inference of the decoder in chunks of classes computes what the plain forward computes."""

import pytest
import torch

from sed.modeling.sed.decoder import GradualFusionDecoder, _score
from sed.modeling.sed.rejection import category_rejection

# Small maps and channels keep these tests fast; the structure (3 stages, pooling, guidance) is SED's.
DIMS = dict(
    prompt_channels=6,
    hidden_dim=32,
    decoder_dims=(32, 16, 16),
    guidance_dims=(12, 10, 8),
    guidance_proj_dims=(8, 8, 4),
    kernel_size=3,
    num_heads=4,
)
H = W = 6


def make_decoder(pooling_size=(2, 2), seed=0):
    torch.manual_seed(seed)
    decoder = GradualFusionDecoder(**DIMS, pooling_size=pooling_size).eval()
    with torch.no_grad():  # non-trivial weights: the released checkpoints' gamma and biases are not 1 and 0
        for param in decoder.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return decoder


def make_inputs(batch, classes, seed=1, spatial_noise=1.0):
    g = torch.Generator().manual_seed(seed)
    cost = torch.rand(batch, DIMS["prompt_channels"], classes, 1, 1, generator=g) * 2 - 1
    cost = cost + spatial_noise * (torch.rand(batch, DIMS["prompt_channels"], classes, H, W, generator=g) - 0.5)
    guidance = [
        torch.randn(batch, c, H * 2 ** (i + 1), W * 2 ** (i + 1), generator=g)
        for i, c in enumerate(DIMS["guidance_dims"])
    ]
    return cost, guidance


def reference_rejection(decoder, cost_map, guidance, topk):
    """Category early rejection as the authors run it, on the plain (autograd) modules, all classes at once."""
    cost = cost_map[0].transpose(0, 1)
    x = decoder.conv1(cost)
    kept = category_rejection(_score(decoder.head0, x), topk)
    x, cost = x[kept], cost[kept]
    for i, stage in enumerate(decoder.stages):
        cost = decoder.decoder_corr_guidance_projection[i](cost)
        appearance = decoder.decoder_guidance_projection[i](guidance[i])
        x = stage(x.unsqueeze(0), appearance, cost.unsqueeze(0))[0]
        if i + 1 < len(decoder.stages):
            keep = category_rejection(_score(decoder.aux_heads[i + 1], x), topk)
            x, cost, kept = x[keep], cost[keep], kept[keep]
    return _score(decoder.head, x), kept


def assert_close(outputs, references, atol=1e-5):
    assert len(outputs) == len(references)
    for out, ref in zip(outputs, references):
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, atol=atol, rtol=1e-5)


@pytest.mark.parametrize("pooling_size,chunk", [((2, 2), 3), ((1, 1), 3), ((2, 2), 1), ((1, 1), 0), ((2, 2), 1000)])
def test_chunked_inference_equals_plain_forward(pooling_size, chunk):
    decoder = make_decoder(pooling_size)
    cost, guidance = make_inputs(batch=2, classes=5)  # chunks of 3 rows straddle the two images
    decoder.chunked_inference = False
    reference = decoder(cost, guidance, with_aux=True)  # the training path: all classes at once
    decoder.chunked_inference = True
    decoder.class_chunk_size = chunk
    with torch.no_grad():
        outputs = decoder(cost, guidance, with_aux=True)
        final_only = decoder(cost, guidance, with_aux=False)
    assert_close(outputs, reference)
    assert_close(final_only, reference[:1])


def test_batch_equals_images_one_at_a_time():
    decoder = make_decoder()
    decoder.class_chunk_size = 4
    cost, guidance = make_inputs(batch=3, classes=5)
    with torch.no_grad():
        batch = decoder(cost, guidance, with_aux=False)[0]
        single = [decoder(cost[i : i + 1], [g[i : i + 1] for g in guidance], with_aux=False)[0] for i in range(3)]
    assert_close([batch], [torch.cat(single)])


@pytest.mark.parametrize(
    "composed,pooling_size,held",
    [(False, (2, 2), True), (False, (2, 2), False), (True, (2, 2), False), (False, (1, 1), True)],
)
@pytest.mark.parametrize("chunk", [4, 0])
def test_chunked_rejection_equals_reference(monkeypatch, chunk, composed, pooling_size, held):
    """Both ways of scoring the first rejection (TEST.FAST_COMPOSED_SCORES) keep the reference's classes here
    (no near-ties) and give its logits, whether every class's cost embedding is held or the kept classes are
    embedded again (large vocabularies); so does the in-place class attention of 1x1 pooling (eval.sh's)."""
    from sed.modeling.sed import decoder as decoder_module

    monkeypatch.setattr(decoder_module, "HELD_EMBEDDING_BYTES", 2**30 if held else 0)
    decoder = make_decoder(pooling_size)
    decoder.composed_rejection_scores = composed
    cost, guidance = make_inputs(batch=1, classes=12, spatial_noise=0.2)  # classes that win in broad areas
    decoder.class_chunk_size = chunk
    with torch.no_grad():
        reference_logits, reference_kept = reference_rejection(decoder, cost, guidance, topk=1)
        logits, kept = decoder.forward_with_rejection(cost, guidance, topk=1)
    assert 0 < len(reference_kept) < 12, "the test needs some classes rejected and some kept"
    assert torch.equal(kept, reference_kept)
    assert_close([logits], [reference_logits])


def test_rejection_scores_equal_head0_of_the_cost_embedding():
    # Rejection scores every class without building its cost embedding; the border pixels, where head0's
    # padding meets the embedding's, are where a composed convolution would go wrong.
    decoder = make_decoder()
    cost = make_inputs(batch=1, classes=5)[0].transpose(1, 2).flatten(0, 1)  # (T, P, h, w)
    with torch.no_grad():
        scores = decoder._embedding_scores(cost, *decoder._embedding_score_kernels())
        reference = _score(decoder.head0, decoder.conv1(cost))
    torch.testing.assert_close(scores, reference, rtol=1e-5, atol=1e-5)


def test_rejection_wants_one_image():
    decoder = make_decoder()
    cost, guidance = make_inputs(batch=2, classes=3)
    with torch.no_grad(), pytest.raises(ValueError, match="one image"):
        decoder.forward_with_rejection(cost, guidance, topk=1)


def test_training_forward_keeps_autograd_path():
    """With autograd on, nothing runs in place: gradients flow into every parameter as before."""
    decoder = make_decoder().train()
    cost, guidance = make_inputs(batch=1, classes=3)
    outputs = decoder(cost, guidance, with_aux=True)
    sum(o.sum() for o in outputs).backward()
    assert all(p.grad is not None for p in decoder.parameters())


def test_the_mode_chooses_the_path_not_autograd():
    """eval(): chunked inference (no autograd) even with gradients on; chunked_inference False: the training path."""
    decoder = make_decoder()
    cost, guidance = make_inputs(batch=1, classes=4)
    chunked = decoder(cost, guidance, with_aux=False)[0]
    decoder.chunked_inference = False
    whole = decoder(cost, guidance, with_aux=False)[0]
    assert not chunked.requires_grad and whole.requires_grad
    assert_close([chunked], [whole.detach()])


def test_auto_chunk_size_from_config():
    from conftest import load_cfg

    decoder = GradualFusionDecoder(load_cfg("convnextB_768.yaml"), prompt_channels=80)
    assert decoder.class_chunk_size == 0
    # automatic: as many class maps as hold 2^17 elements of the final 8h x 8w maps on the CPU, 2^23 elsewhere
    # (at 768x768, h = w = 24: a final map has 64 * 576 = 36864 elements), at least one
    assert decoder.rows_per_chunk((24, 24), "cpu") == 3  # 131072 // 36864
    assert decoder.rows_per_chunk((24, 24), "cuda") == 227  # 8388608 // 36864
    assert decoder.rows_per_chunk((1, 2), "cpu") == 1024 and decoder.rows_per_chunk((64, 64), "cpu") == 1
    decoder = GradualFusionDecoder(
        load_cfg("convnextB_768.yaml", ["MODEL.SEM_SEG_HEAD.CLASS_CHUNK_SIZE", "16"]), prompt_channels=80
    )
    assert decoder.rows_per_chunk((24, 24), "cpu") == 16


@pytest.mark.parametrize("dims,shared", [({}, True), ({"hidden_dim": 128, "decoder_dims": (16, 16, 16)}, False)])
def test_stage_outputs_share_memory_when_rows_grow(monkeypatch, dims, shared):
    """Full inference puts each stored output at the end of one block (a stage's input overlaps its output);
    decoders whose output rows shrink get memory of their own. Both compute the plain forward's logits."""
    from sed.modeling.sed import decoder as decoder_module

    blocks = []
    original = decoder_module._SharedStageMemory

    def recording(*args):
        blocks.append(original(*args))
        return blocks[-1]

    monkeypatch.setattr(decoder_module, "_SharedStageMemory", recording)
    torch.manual_seed(0)
    decoder = GradualFusionDecoder(**{**DIMS, **dims}).eval()
    cost, guidance = make_inputs(batch=2, classes=5)
    decoder.chunked_inference = False
    reference = decoder(cost, guidance, with_aux=False)
    decoder.chunked_inference = True
    decoder.class_chunk_size = 3
    with torch.no_grad():
        outputs = decoder(cost, guidance, with_aux=False)
    assert_close(outputs, reference)
    assert len(blocks) == 1 and blocks[0].shared == shared
    assert (blocks[0].memory is not None) == shared


def assert_variant_keeps_outputs(decoder, use_variant, fast):
    """Runs `decoder` with `use_variant(False)` then `use_variant(True)` on the same inputs: the same kept classes
    (fast inference) and the same probabilities to float rounding (1e-6), full inference's aux outputs included."""
    cost, guidance = make_inputs(batch=1, classes=12, spatial_noise=0.2)
    outputs = {}
    with torch.no_grad():
        for variant in (False, True):
            use_variant(variant)
            if fast:
                outputs[variant] = decoder.forward_with_rejection(cost, guidance, topk=1)
            else:
                outputs[variant] = (decoder(cost, guidance, with_aux=True), None)
    (reference, kept_reference), (variant, kept) = outputs[False], outputs[True]
    if fast:
        assert torch.equal(kept, kept_reference)
        reference, variant = [reference], [variant]
    for out, ref in zip(variant, reference):
        torch.testing.assert_close(out.sigmoid(), ref.sigmoid(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("fast", [False, True])
def test_channels_last_fusion_keeps_outputs(fast):
    """The narrow stages' fusion runs channels-last in inference (speed on the CPU): the same kept classes and
    probabilities as the NCHW layout, to float rounding (1e-6)."""
    decoder = make_decoder((1, 1))
    assert [stage.channels_last_inference for stage in decoder.stages] == [False, True, True]

    def use_channels_last(channels_last):
        for stage in decoder.stages[1:]:
            stage.channels_last_inference = channels_last

    assert_variant_keeps_outputs(decoder, use_channels_last, fast)


@pytest.mark.parametrize("kernel,size", [(3, (6, 7)), (3, (1, 2)), (5, (4, 9)), (1, (3, 3))])
@pytest.mark.parametrize("channels_last", [False, True])
def test_heads_by_taps_equal_the_convolution(kernel, size, channels_last):
    """Inference scores with the one-channel heads as a product per kernel tap plus shifted sums (CPU speed):
    the convolution's scores to float32 rounding, at the borders, on maps smaller than the kernel, in both
    layouts the stages produce."""
    from sed.modeling.sed.decoder import _score_by_taps

    torch.manual_seed(0)
    head = torch.nn.Conv2d(16, 1, kernel, padding=kernel // 2)
    x = torch.randn(4, 16, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(_score_by_taps(head, x), _score(head, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fast", [False, True])
def test_held_cost_guidance_gives_the_recomputed_outputs(monkeypatch, fast):
    """Each stage's cost guidance is held for the next stage (within HELD_GUIDANCE_BYTES) instead of projecting the
    raw cost maps again: the same numbers, with and without rejection between the stages."""
    from sed.modeling.sed import decoder as decoder_module

    decoder = make_decoder((1, 1))
    decoder.class_chunk_size = 4
    cost, guidance = make_inputs(batch=1 if fast else 2, classes=12, spatial_noise=0.2)
    outputs, projections = {}, []
    decoder.decoder_corr_guidance_projection[0].register_forward_hook(lambda *_: projections.append(1))
    for budget in (2**30, 0):
        monkeypatch.setattr(decoder_module, "HELD_GUIDANCE_BYTES", budget)
        projections.clear()
        with torch.no_grad():
            if fast:
                logits, kept = decoder.forward_with_rejection(cost, guidance, topk=1)
                outputs[budget] = [logits, kept]
            else:
                outputs[budget] = decoder(cost, guidance, with_aux=True)
        chunks = len(projections)
        if budget:
            held_chunks = chunks
    assert chunks == 3 * held_chunks  # the first projection: once, against once per stage
    for held, recomputed in zip(outputs[2**30], outputs[0]):
        assert torch.equal(held, recomputed)
