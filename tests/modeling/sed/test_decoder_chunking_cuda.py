"""The decoder's chunked inference on CUDA (chunk sizing for the device, the stage outputs' shared memory, chunked
rejection) against the plain forward on the same device and on the CPU. Marked `gpu`: skipped without CUDA."""

import pytest
import torch
from test_decoder_chunking import assert_close, make_decoder, make_inputs, reference_rejection

pytestmark = pytest.mark.gpu


def to(device, cost, guidance):
    return cost.to(device), [g.to(device) for g in guidance]


@pytest.mark.parametrize("pooling_size,chunk", [((2, 2), 3), ((1, 1), 3), ((1, 1), 0)])
def test_chunked_inference_equals_plain_forward_and_the_cpu(gpu_device, strict_fp32, pooling_size, chunk):
    decoder = make_decoder(pooling_size)
    cost, guidance = make_inputs(batch=2, classes=5)
    decoder.chunked_inference = False
    on_cpu = decoder(cost, guidance, with_aux=True)
    decoder.to(gpu_device)
    cost, guidance = to(gpu_device, cost, guidance)
    plain = decoder(cost, guidance, with_aux=True)
    decoder.chunked_inference = True
    decoder.class_chunk_size = chunk  # 0: the device's automatic size
    with torch.no_grad():
        chunked = decoder(cost, guidance, with_aux=True)
    assert_close([o.cpu() for o in chunked], [o.detach().cpu() for o in plain])
    assert_close([o.cpu() for o in chunked], [o.detach() for o in on_cpu], atol=1e-4)


@pytest.mark.parametrize("composed", [False, True])
def test_chunked_rejection_equals_reference_on_the_device(gpu_device, strict_fp32, composed):
    decoder = make_decoder().to(gpu_device)
    decoder.composed_rejection_scores = composed
    decoder.class_chunk_size = 4
    cost, guidance = to(gpu_device, *make_inputs(batch=1, classes=12, spatial_noise=0.2))
    with torch.no_grad():
        reference_logits, reference_kept = reference_rejection(decoder, cost, guidance, topk=1)
        logits, kept = decoder.forward_with_rejection(cost, guidance, topk=1)
    assert 0 < len(reference_kept) < 12
    assert torch.equal(kept.cpu(), reference_kept.cpu())
    assert_close([logits.cpu()], [reference_logits.cpu()])


def test_batch_equals_images_one_at_a_time_on_the_device(gpu_device, strict_fp32):
    decoder = make_decoder().to(gpu_device)
    decoder.class_chunk_size = 4
    cost, guidance = to(gpu_device, *make_inputs(batch=3, classes=5))
    with torch.no_grad():
        batch = decoder(cost, guidance, with_aux=False)[0]
        single = [decoder(cost[i : i + 1], [g[i : i + 1] for g in guidance], with_aux=False)[0] for i in range(3)]
    assert_close([batch.cpu()], [torch.cat(single).cpu()])
