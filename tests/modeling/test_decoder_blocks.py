import torch

from sed.modeling.class_attention import ClassAttentionLayer, LinearAttention
from sed.modeling.decoder_blocks import DoubleConv


def test_split_input_equals_the_block_on_the_concatenation():
    torch.manual_seed(0)
    block = DoubleConv(12 + 4 + 4, 32).eval()
    x, shared, per_class = torch.randn(2, 3, 12, 8, 8), torch.randn(2, 1, 4, 8, 8), torch.randn(2, 3, 4, 8, 8)
    concatenated = torch.cat([x, shared.expand(-1, 3, -1, -1, -1), per_class], dim=2).flatten(0, 1)
    torch.testing.assert_close(block.forward_split_input([x, shared, per_class]), block(concatenated))


def test_linear_attention_matches_its_definition():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 5, 4, 8), torch.randn(2, 7, 4, 8), torch.randn(2, 7, 4, 8)
    phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    numerator = torch.einsum("nlhd,nshd,nshv->nlhv", phi_q, phi_k, v)
    denominator = torch.einsum("nlhd,nshd->nlh", phi_q, phi_k)[..., None]
    torch.testing.assert_close(LinearAttention()(q, k, v), numerator / (denominator + 1e-6 * 7), atol=1e-5,
                               rtol=1e-4)


def test_class_attention_is_equivariant_to_class_order():
    torch.manual_seed(0)
    layer = ClassAttentionLayer(16, num_heads=4, pooling_size=(2, 2)).eval()
    x = torch.randn(1, 6, 16, 8, 8)
    order = torch.randperm(6)
    torch.testing.assert_close(layer(x)[:, order], layer(x[:, order]), atol=1e-5, rtol=1e-5)
