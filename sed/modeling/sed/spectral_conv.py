"""Inference of a large-kernel 'same' convolution as a product of discrete Fourier transforms, in matrix products.

SED's cost embedding `conv1` (80 -> 128 channels, 7x7, on each class's 24x24 cost map) is the one operation of the
decoder that fast inference runs on every class of the vocabulary: 289 M multiply-adds per class, 4 s at A-847 on
one CPU core at the convolution's peak. Zero-padded to 27x27 (enough for a 7x7 kernel: no wrap-around), the
convolution is a product per frequency of the maps' and the kernels' transforms, which takes ~19x fewer
multiply-adds (378 frequencies x 80 x 128 complex products per class), and the transforms are small matrix
products on the 24x24 maps. Everything runs as large float32 matrix products; the kernels' transforms are computed
in float64 once per weight version.

Float32 rounding: each output sums 80 x 49 products either way; the transforms add sums of at most 27 terms with
factors of modulus 1. On SED-B's shapes the outputs are no further from the exact (float64) convolution than twice
oneDNN's direct float32 convolution is (`tests/modeling/sed/test_spectral_conv.py`; measured closer), but they are
not bitwise equal to conv2d's.

Only where it applies (`spectral_conv_supported`): CPU float32 or bfloat16 maps (computed in float32 either way, also
under bfloat16 autocast), no gradient recorded, not tracing or compiling; anything else (training, CUDA, exports)
runs `nn.Conv2d` itself.
"""

import math

import torch


def spectral_conv_supported(conv, x):
    """True if `SpectralConvolution` may replace `conv` (an nn.Conv2d) on input `x` (N, P, H, W)."""
    k_h, k_w = conv.kernel_size
    shape_ok = (
        conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and k_h % 2 == 1
        and k_w % 2 == 1
        and conv.padding == (k_h // 2, k_w // 2)
    )
    if not shape_ok or x.device.type != "cpu" or conv.weight.dtype != torch.float32:
        return False
    if x.dtype not in (torch.float32, torch.bfloat16) or torch.is_grad_enabled():
        return False
    return not (torch.jit.is_tracing() or torch.compiler.is_compiling())


def _dft_pair_matrix(frequencies, positions, length, sign):
    """Real (2F, 2N) matrix of the complex map y[f] = sum_n x[n] exp(sign 2 pi i f n / length), rows (f, re/im)
    and columns (n, re/im) interleaved, as the transforms' tensors lay them out (float64)."""
    angle = 2 * math.pi * torch.outer(frequencies, positions) / length
    cos, sin = torch.cos(angle), sign * torch.sin(angle)
    # out_re = cos * in_re - sin * in_im; out_im = sin * in_re + cos * in_im
    blocks = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], 1)  # (F, 2, N, 2)
    return blocks.reshape(2 * len(frequencies), 2 * len(positions))


class _Plan:
    """The transforms for (H, W) maps and the kernel's transform, for one weight version (float32 tensors)."""

    def __init__(self, weight, height, width):
        channels_out, channels_in, k_h, k_w = weight.shape
        pad_h, pad_w = k_h // 2, k_w // 2
        # Cyclic lengths without wrap-around: an output row reads input rows -pad_h .. H-1+pad_h, which must not
        # alias real rows modulo the length (rows H .. L-1 are the zero padding).
        self.length_h, self.length_w = height + pad_h, width + pad_w
        self.bins_w = self.length_w // 2 + 1  # real input: the other half of the row frequencies is conjugate
        f64 = torch.float64
        rows, columns = torch.arange(height, dtype=f64), torch.arange(width, dtype=f64)
        freq_h, freq_w = torch.arange(self.length_h, dtype=f64), torch.arange(self.bins_w, dtype=f64)
        angle_w = 2 * math.pi * torch.outer(freq_w, columns) / self.length_w  # (Fw, W)
        # forward along W of a real row: (2*Fw, W), rows (re/im, frequency)
        self.forward_w = torch.cat([torch.cos(angle_w), -torch.sin(angle_w)])
        # forward along H of complex columns: rows (frequency, re/im), columns (row, re/im)
        self.forward_h = _dft_pair_matrix(freq_h, rows, self.length_h, -1.0)
        # inverse along H back to the H output rows, scaled by 1/Lh: rows (row, re/im), columns (frequency, re/im)
        self.inverse_h = _dft_pair_matrix(rows, freq_h, self.length_h, 1.0) / self.length_h
        # inverse along W of a half spectrum to W real outputs (conjugate half counted twice): (W, 2*Fw)
        weight_w = torch.full((self.bins_w,), 2.0, dtype=f64)
        weight_w[0] = 1.0
        if self.length_w % 2 == 0:
            weight_w[-1] = 1.0
        scaled = weight_w[:, None] / self.length_w
        self.inverse_w = torch.cat([scaled * torch.cos(angle_w), -scaled * torch.sin(angle_w)]).t()
        # The kernel as a cyclic filter (flipped: the convolution is a correlation), transformed: (Lh, Fw, P, C)
        cyclic = weight.new_zeros((channels_out, channels_in, self.length_h, self.length_w), dtype=f64)
        taps_h = [(pad_h - u) % self.length_h for u in range(k_h)]
        taps_w = [(pad_w - v) % self.length_w for v in range(k_w)]
        cyclic[:, :, torch.tensor(taps_h)[:, None], torch.tensor(taps_w)[None, :]] = weight.detach().to(f64)
        spectrum = torch.fft.rfft2(cyclic).permute(2, 3, 1, 0)
        self.kernel_re = spectrum.real.float().contiguous()
        self.kernel_im = spectrum.imag.float().contiguous()
        self.kernel_im_negated = (-spectrum.imag).float().contiguous()
        for name in ("forward_w", "forward_h", "inverse_h", "inverse_w"):
            setattr(self, name, getattr(self, name).float().to(weight.device))


class SpectralConvolution:
    """`conv(x)` of a stride-1 nn.Conv2d with an odd kernel and 'same' zero padding, through the DFT.

    Holds the transforms of the last (weight version, map size) it saw, so one instance belongs to one module.
    """

    def __init__(self):
        self._key = None
        self._plan = None

    def plan(self, conv, height, width):
        key = (conv.weight.data_ptr(), conv.weight._version, conv.weight.device, height, width)
        if key != self._key:
            self._plan, self._key = _Plan(conv.weight, height, width), key
        return self._plan

    def __call__(self, conv, x):
        """(N, P, H, W) -> (N, C, H, W) float32, equal to float32 `conv(x)` up to float32 rounding.

        Always computed in float32, also from bfloat16 maps or under bfloat16 autocast (TEST.PRECISION bf16): its
        products are few enough that float32 costs less than conv2d in bfloat16, and keeps conv2d's accuracy.
        """
        with torch.autocast("cpu", enabled=False):
            return self._convolve(conv, x.float())

    def _convolve(self, conv, x):
        n, p, height, width = x.shape
        plan = self.plan(conv, height, width)
        c = conv.out_channels
        bins_w, length_h = plan.bins_w, plan.length_h
        # (H, W, N*P): the transforms contract the leading dimensions as plain matrix products
        maps = x.permute(2, 3, 0, 1).reshape(height, width, n * p)
        rows = torch.matmul(plan.forward_w, maps)  # (H, 2*Fw, N*P) = (H, re/im, Fw, N*P)
        spectrum = torch.mm(plan.forward_h, rows.view(2 * height, -1)).view(length_h, 2, bins_w, n, p)
        products = spectrum.new_empty(length_h, 2, bins_w, n, c)
        for f in range(length_h):
            re, im = spectrum[f, 0], spectrum[f, 1]  # (Fw, N, P) each
            torch.bmm(re, plan.kernel_re[f], out=products[f, 0]).baddbmm_(im, plan.kernel_im_negated[f])
            torch.bmm(re, plan.kernel_im[f], out=products[f, 1]).baddbmm_(im, plan.kernel_re[f])
        columns = torch.mm(plan.inverse_h, products.view(2 * length_h, -1)).view(height, 2 * bins_w, n * c)
        out = torch.matmul(plan.inverse_w, columns).view(height * width, n * c)  # (H*W, N*C)
        # a 2-D transposition, which torch copies in cache blocks (a 4-D permutation reads element by element)
        out = out.t().contiguous().view(n, c, height, width)
        return out if conv.bias is None else out.add_(conv.bias[:, None, None])
