"""SED's gradual fusion decoder: the cost map of every class is upsampled 8x in three fusion stages.

Module names follow the released checkpoints (`...predictor.transformer.*`).
"""

import functools
import itertools

import torch
from detectron2.config import configurable
from torch import nn

from ...utils.precision import full_precision
from ..chunks import chunk_slices
from .class_attention import ClassAttentionLayer
from .decoder_blocks import ConvNeXtBlock, DoubleConv
from .rejection import category_rejection
from .spectral_conv import SpectralConvolution, spectral_conv_supported

# Inference runs the fusion of stages with at most this many output channels (SED-B's and SED-L's last stage: 16,
# at 8x the cost map's size) channels-last: oneDNN's convolutions of so few channels at 192x192 run about twice as
# fast so on the CPU (one thread: 20 -> 48 GMAC/s for 24 -> 16 channels, 3x3), where NCHW leaves most vector
# lanes idle; the full decoder is ~7% faster at 150 classes, probabilities within 1e-6 (other summation order).
CHANNELS_LAST_FUSION_MAX_CHANNELS = 16


class FusionStage(nn.Module):
    """One decoder stage: ConvNeXt block, class attention, 2x upsampling fused with guidance.

    (B, T, C, H, W) class maps -> (B, T, C_out, 2H, 2W). The stage is defined once, in parts: `class_features`
    and `fuse` see each class map on its own, `attend` sees the T classes of an image at each pooled location,
    `appearance_response` the image's guidance, shared by its classes. `forward` runs the parts on every class at
    once (training); the decoder's inference runs the per-class parts on chunks of class maps (bounded memory).
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        guidance_channels,
        kernel_size=9,
        num_heads=4,
        pooling_size=(2, 2),
        cnext_norm_weight_decay=True,
    ):
        super().__init__()
        self.cnext = ConvNeXtBlock(in_channels, kernel_size, norm_weight_decay=cnext_norm_weight_decay)
        self.attention = ClassAttentionLayer(in_channels, num_heads, pooling_size)
        self.up = nn.ConvTranspose2d(in_channels, in_channels - guidance_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels + guidance_channels, out_channels)
        self.guidance_channels = guidance_channels
        self.out_channels = out_channels
        self.channels_last_inference = out_channels <= CHANNELS_LAST_FUSION_MAX_CHANNELS
        self._composed_upsampling_cache = None

    def class_features(self, maps):
        """(N, C, H, W) class maps -> (ConvNeXt block output (N, C, H, W), its pooled maps (N, C, h', w'))."""
        maps = self.cnext(maps)
        return maps, self.attention.pool(maps)

    def class_features_(self, maps):
        """Inference: `class_features` with the ConvNeXt block's output written into `maps` (N, C, H, W)."""
        maps = self.cnext.add_residual_(maps)
        return maps, self.attention.pool(maps)

    def attend(self, sequences):
        """(S, T, C) -> (S, T, C): class attention among the T classes of an image at each of S pooled locations."""
        return self.attention.transform(sequences)

    def appearance_response(self, appearance):
        """(B, g, 2H, 2W) projected appearance guidance -> (B, C_out, 2H, 2W): its term of the fusion convolution.

        The fusion's first convolution is linear and bias-free, so conv(cat(up, appearance, cost)) is the sum of
        one convolution per input with the weight split along input channels: the image's appearance term is
        computed once and shared by its classes instead of being concatenated to every class map.
        """
        return self.conv.first_conv(appearance, self._fusion_weights()[1])

    def fuse(self, maps, attended, appearance_response, cost_guidance):
        """Upsampling fused with guidance, for R classes of each of G images (class maps on their own).

        Args:
            maps: (G, R, C, H, W) outputs of `class_features`.
            attended: (G, R, C, h', w') their pooled maps after `attend`, added back at full size; None when
                they have been added to `maps` already (inference with 1x1 pooling, see `_stage_inference`).
            appearance_response: (G, 1, C_out, 2H, 2W) from `appearance_response`.
            cost_guidance: (G, R, g, 2H, 2W) the classes' projected cost maps.
        Returns:
            (G, R, C_out, 2H, 2W), channels-last in inference where `channels_last_inference`.
        """
        g, r, _, h, w = maps.shape
        up_weight, _, cost_weight = self._fusion_weights()
        maps, cost_guidance = maps.flatten(0, 1), cost_guidance.flatten(0, 1)
        if attended is not None:
            maps = maps + self.attention.unpool(attended.flatten(0, 1), (h, w))
        if torch.is_grad_enabled() or torch.jit.is_tracing():  # training and exports: the layers as they are
            out = self.conv.first_conv(self.up(maps), up_weight)
            out = (out.view(g, r, *out.shape[1:]) + appearance_response).flatten(0, 1)
            out = out + self.conv.first_conv(cost_guidance, cost_weight)
        else:
            channels_last = self.channels_last_inference  # see CHANNELS_LAST_FUSION_MAX_CHANNELS
            if channels_last:
                cost_guidance = cost_guidance.contiguous(memory_format=torch.channels_last)
            out, bias = self._upsampled_fusion(maps, channels_last)
            out.view(g, r, *out.shape[1:]).add_(appearance_response + bias)
            out.add_(self.conv.first_conv(cost_guidance, cost_weight))
        out = self.conv.rest(out)
        return out.view(g, r, *out.shape[1:])

    def _upsampled_fusion(self, maps, channels_last):
        """Inference: the fusion convolution's term of the upsampled maps, conv3x3(up(maps)), computed as one 2x2
        convolution of `maps` (N, C, H, W) into the four sub-pixel phases (composed kernels, half the
        multiply-adds of the two layers and no (N, C - g, 2H, 2W) intermediate), then interleaved.

        Returns ((N, C_out, 2H, 2W) without the upsampling's bias, its term (C_out, 2H, 2W): the bias through the
        convolution, which differs at the borders where the convolution's zero padding starts).
        """
        n, _, h, w = maps.shape
        kernel, bias = self._composed_upsampling(h, w, maps.device)
        c_out = bias.shape[0]
        if channels_last:
            maps = maps.contiguous(memory_format=torch.channels_last)
        # window (p, q) of the padded maps covers rows p-1, p and columns q-1, q; phase (a, b) of output pixel
        # (2i + a, 2j + b) reads window (i + a, j + b)
        phases = nn.functional.conv2d(nn.functional.pad(maps, (1, 1, 1, 1)), kernel)  # (N, 4*C_out, H+1, W+1)
        if channels_last:
            out = phases.new_empty(n, h, 2, w, 2, c_out).permute(0, 5, 1, 2, 3, 4)
        else:
            out = phases.new_empty(n, c_out, h, 2, w, 2)
        for a in range(2):
            for b in range(2):
                phase = 2 * a + b
                out[:, :, :, a, :, b] = phases[:, phase * c_out : (phase + 1) * c_out, a : a + h, b : b + w]
        return out.view(n, c_out, 2 * h, 2 * w), bias

    def _composed_upsampling(self, h, w, device):
        """(kernel (4*C_out, C, 2, 2), bias term (C_out, 2H, 2W)) of `_upsampled_fusion` for (H, W) maps, computed
        in float64 from the current weights (cached while they stay the same)."""
        up_weight = self._fusion_weights()[0]
        key = (h, w, device) + tuple((p.data_ptr(), p._version) for p in (self.up.weight, self.up.bias, up_weight))
        if self._composed_upsampling_cache is None or self._composed_upsampling_cache[0] != key:
            f64 = torch.float64
            conv = up_weight.detach().to(f64)  # (C_out, C - g, 3, 3)
            transposed, up_bias = self.up.weight.detach().to(f64), self.up.bias.detach().to(f64)  # (C, C - g, 2, 2)
            kernel = conv.new_zeros(2, 2, conv.shape[0], transposed.shape[0], 2, 2)  # (a, b, C_out, C, 2, 2)
            for a, b, dy, dx in itertools.product(range(2), range(2), range(3), range(3)):
                # the convolution's tap (dy, dx) at phase (a, b) reads up() at 2(i + sy) + ay: maps row i + sy,
                # transposed tap ay (floor division), i.e. window row sy - a + 1
                (sy, ay), (sx, ax) = divmod(a + dy - 1, 2), divmod(b + dx - 1, 2)
                kernel[a, b, :, :, sy - a + 1, sx - b + 1] += conv[:, :, dy, dx] @ transposed[:, :, ay, ax].t()
            bias = nn.functional.conv2d(up_bias.view(1, -1, 1, 1).expand(1, -1, 2 * h, 2 * w), conv, padding=1)[0]
            dtype = self.up.weight.dtype
            bias = bias.to(device, dtype)
            if self.channels_last_inference:  # the layout of the maps it is added to
                bias = bias[None].contiguous(memory_format=torch.channels_last)[0]
            self._composed_upsampling_cache = (key, kernel.flatten(0, 2).to(device, dtype), bias)
        return self._composed_upsampling_cache[1:]

    def _fusion_weights(self):
        """The fusion convolution's weight split into its (upsampled maps, appearance, cost) input channels."""
        return self.conv.split_weight([self.up.out_channels, self.guidance_channels, self.guidance_channels])

    def forward(self, x, appearance_guidance, cost_guidance):
        """
        Args:
            x: (B, T, C, H, W) class maps.
            appearance_guidance: (B, g, 2H, 2W) projected image features, shared by the image's classes.
            cost_guidance: (B, T, g, 2H, 2W) upsampled cost map of each class.
        """
        b, t, c = x.shape[:3]
        maps, pooled = self.class_features(x.flatten(0, 1))
        hp, wp = pooled.shape[-2:]
        # (B*T, C, h', w') -> one sequence of T class vectors per image and pooled location, and back
        sequences = pooled.view(b, t, c, hp, wp).permute(0, 3, 4, 1, 2).reshape(b * hp * wp, t, c)
        attended = self.attend(sequences).view(b, hp, wp, t, c).permute(0, 3, 4, 1, 2)
        return self.fuse(
            maps.view_as(x), attended, self.appearance_response(appearance_guidance).unsqueeze(1), cost_guidance
        )


def _score(head, x):
    """(N, C, H, W) -> (N, H, W) one-channel head output."""
    return head(x).squeeze(1)


def _full_precision_score(head, x):
    """Inference's `_score`, in float32 even under autocast (TEST.PRECISION bf16/fp16): category early rejection
    ranks these scores, and bf16's 8-bit mantissa would tie classes that differ in the third digit."""
    with full_precision(x.device):
        x = x.float()
        return _score_by_taps(head, x) if x.device.type == "cpu" else _score(head, x)


def _score_by_taps(head, x):
    """`_score` of a one-output-channel, stride-1 'same' convolution as one matrix product giving each kernel tap's
    sum over channels, (K, C) x (C, H*W) per map, then the sum of the taps shifted into place.

    oneDNN's convolution leaves most vector lanes idle with one output channel (~2-3 GMAC/s); this runs SED-B's
    heads 4-7x faster on the CPU (1 thread, 768 px: head0 on 48 maps 11 -> 2 ms), to float32 rounding.
    """
    n, c, h, w = x.shape
    k_h, k_w = head.kernel_size
    weight = head.weight[0].permute(1, 2, 0).reshape(k_h * k_w, c)  # (K, C), taps in row-major (dy, dx) order
    # bmm, not matmul, which would copy x into (N*H*W, C) rows for a narrow (C, K) product; x.flatten(2) is a view
    # in both layouts (channels-last: a transposed operand, which the product reads as it is)
    taps = torch.bmm(weight.expand(n, -1, -1), x.flatten(2)).view(n, k_h, k_w, h, w)
    return _sum_shifted_taps(taps, head.padding, head.bias[0])


def _sum_shifted_taps(taps, padding, bias):
    """(N, kH, kW, H, W) maps of each kernel tap of a one-output-channel, stride-1 convolution zero-padded by
    `padding` -> (N, H, W) scores: `bias` plus each tap's map shifted into place (taps falling outside the map,
    on the padding, add nothing)."""
    n, k_h, k_w, h, w = taps.shape
    pad_h, pad_w = padding
    scores = taps.new_empty(n, h, w)
    scores.copy_(taps[:, pad_h, pad_w]).add_(bias)
    for dy in range(k_h):
        for dx in range(k_w):
            oy, ox = dy - pad_h, dx - pad_w  # scores[y, x] += taps[dy, dx][y + oy, x + ox] where inside
            if (oy, ox) == (0, 0) or abs(oy) >= h or abs(ox) >= w:
                continue
            scores[:, max(0, -oy) : h - max(0, oy), max(0, -ox) : w - max(0, ox)] += taps[
                :, dy, dx, max(0, oy) : h + min(0, oy), max(0, ox) : w + min(0, ox)
            ]
    return scores


# Inference runs the per-class work in chunks of rows (row = one image's map of one class). Automatic chunks
# (MODEL.SEM_SEG_HEAD.CLASS_CHUNK_SIZE 0) hold about this many elements of the final 8h x 8w maps: on the CPU,
# a few rows, whose intermediates stay in cache (fastest measured, docs/PERFORMANCE.md); on other devices
# (GPUs), hundreds of rows, enough to keep them busy while bounding memory.
AUTO_CHUNK_ELEMENTS_CPU = 2**17
AUTO_CHUNK_ELEMENTS_OTHER_DEVICES = 2**23
# Rejection's scoring of every class runs on chunks of this many times the stages' rows: its maps are the cost
# map's size, 64x smaller than the final maps (measured faster than the stages' chunk on the CPU, 1 thread).
EMBEDDING_SCORE_ROWS_PER_CLASS_MAP = 64
# The cost embedding through the DFT (`spectral_cost_embedding`) runs on chunks of at least this many rows (more if
# the stages' chunk is larger): its matrix products need tens of rows to run at speed (SED-B, 150 classes,
# 1 thread: 3 rows 0.59 s, 24-96 rows 0.17-0.18 s, conv2d 0.67 s).
SPECTRAL_EMBEDDING_ROWS = 48
# Fast inference holds the cost embedding of every class up to this size (SED-B: 227 classes); above, it embeds
# the kept classes again rather than hold them all (A-847: 250 MB), at 4% more of the embedding's work.
HELD_EMBEDDING_BYTES = 64 * 2**20
# Inference holds each stage's cost guidance for the next stage (which then projects it once more instead of
# projecting the raw cost maps again) up to this size: SED-B at 768 px holds stage 1's for up to 227 classes,
# stage 2's for up to 113.
HELD_GUIDANCE_BYTES = 64 * 2**20
# Class attention runs on chunks of locations of about this many elements (locations x classes x channels): on
# the CPU, 2**18 was the fastest of 2**16 .. 2**20 at every SED-B stage (150 classes, 1 thread).
ATTENTION_CHUNK_ELEMENTS = 2**18


def _image_segments(rows, classes):
    """(image, its class slice, slice within `rows`) for each image that rows of the flattened (B*T) layout touch."""
    for image in range(rows.start // classes, (rows.stop - 1) // classes + 1):
        first, last = max(rows.start, image * classes), min(rows.stop, (image + 1) * classes)
        yield (
            image,
            slice(first - image * classes, last - image * classes),
            slice(first - rows.start, last - rows.start),
        )


def _map_rows(fn, n, size, allocate=None):
    """Runs `fn(rows)`, which returns a tuple of tensors (or None) of len(rows) rows, over chunks of range(n).

    Returns the tuple of the chunks' results stacked into tensors of n rows (written into tensors allocated once:
    no concatenation copy; the first by `allocate(first chunk's first result)` when given); a single chunk is
    returned as it is.
    """
    outs = None
    for rows in chunk_slices(n, size):
        results = fn(rows)
        if rows.stop - rows.start == n:
            return results
        if outs is None:
            outs = tuple(
                None
                if y is None
                else allocate(y)
                if allocate is not None and j == 0
                else y.new_empty((n, *y.shape[1:]))
                for j, y in enumerate(results)
            )
        for out, y in zip(outs, results):
            if out is not None:
                out[rows] = y
    return outs


class _SharedStageMemory:
    """One block of memory for the stored outputs of full inference (cost embedding, stages 1 .. S-1).

    Each output's n rows sit at the end of the block, so output k overlaps output k + 1, the next stage's. That
    stage writes its output rows in ascending order, each after reading the same input rows; when output rows
    are no smaller than input rows, the end of output row r never reaches input row r + 1, so no row is
    overwritten before it is read. The input and output of a stage then take the output's memory instead of both
    (SED-B at 847 classes: stage 2 holds 1.0 GB instead of 1.5 GB). Outputs are views into the block.
    """

    def __init__(self, rows, row_elements):
        """rows: n; row_elements: elements of one row of each output, in the order they are made."""
        self.rows = rows
        self.row_elements = list(row_elements)
        self.shared = all(a <= b for a, b in zip(self.row_elements, self.row_elements[1:]))
        self.memory = None

    def allocate(self, k, like):
        """Memory for output k: an (n, *like.shape[1:]) tensor of like's dtype and device."""
        shape = (self.rows, *like.shape[1:])
        if not self.shared or like[0].numel() != self.row_elements[k]:
            return like.new_empty(shape)
        if self.memory is None:
            self.memory = like.new_empty(self.rows * self.row_elements[-1])
        if self.memory.dtype != like.dtype or self.memory.device != like.device:
            return like.new_empty(shape)
        size = self.rows * self.row_elements[k]
        return self.memory[len(self.memory) - size :].view(shape)


class GradualFusionDecoder(nn.Module):
    """Cost map (B, P, T, h, w) + encoder features -> per-class logits at 8x the cost map's resolution.

    Training outputs [final (B, T, 8h, 8w), aux0 (B, T, h, w), aux1 (2h), aux2 (4h)]: aux heads score the
    detached cost embedding and stage outputs, so they learn to rank classes without steering the main path.
    """

    @configurable
    def __init__(
        self,
        *,
        prompt_channels=80,
        hidden_dim=128,
        decoder_dims=(64, 32, 16),
        guidance_dims=(512, 256, 128),
        guidance_proj_dims=(32, 16, 8),
        kernel_size=9,
        num_heads=4,
        pooling_size=(2, 2),
        class_chunk_size=0,
        cnext_norm_weight_decay=True,
        composed_rejection_scores=False,
        spectral_cost_embedding=True,
    ):
        """
        Args:
            prompt_channels: P, prompt templates per class (channels of the cost map).
            hidden_dim: channels of the cost embedding.
            decoder_dims: output channels of the three stages.
            guidance_dims: channels of the encoder features used as appearance guidance (res4, res3, res2).
            guidance_proj_dims: appearance and cost guidance channels of the three stages.
            kernel_size: depthwise kernel of the ConvNeXt blocks: one for all stages, or one per stage.
            num_heads: heads of the class attention.
            pooling_size: average pooling before class attention.
            class_chunk_size: inference only: class maps (classes x images) per chunk of the per-class work,
                which bounds memory at large vocabularies (0: automatic, from the cost map's size).
            cnext_norm_weight_decay: the ConvNeXt blocks' LayerNorm takes the ordinary weight decay (the
                authors'), not the optimizer's norm weight decay (see `ConvNeXtBlock`).
            composed_rejection_scores: category early rejection scores every class with head0 composed with the
                cost embedding (`_embedding_scores`) and embeds only the kept classes: much faster at large
                vocabularies, but the scores equal the authors' only to float rounding (~1e-6 instead of ~1e-7),
                so a class tied with the k-th to that precision may be kept or rejected unlike theirs. False: the
                authors' order (embed every class, then head0).
            spectral_cost_embedding: CPU inference computes the cost embedding `conv1` through the discrete
                Fourier transform (`spectral_conv.SpectralConvolution`), in float32 also under TEST.PRECISION bf16:
                3-4x faster, as close to the exact convolution as conv2d's float32 result but not bitwise equal to
                it. False: conv2d.
        """
        super().__init__()
        self.conv1 = nn.Conv2d(prompt_channels, hidden_dim, kernel_size=7, padding=3)
        self.decoder_guidance_projection = nn.ModuleList(
            nn.Sequential(nn.Conv2d(d, g, kernel_size=3, padding=1), nn.ReLU())
            for d, g in zip(guidance_dims, guidance_proj_dims)
        )
        cost_dims = [prompt_channels, *guidance_proj_dims]
        self.decoder_corr_guidance_projection = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(cost_dims[i], cost_dims[i + 1], kernel_size=2, stride=2), nn.ReLU())
            for i in range(len(guidance_proj_dims))
        )
        stage_dims = [hidden_dim, *decoder_dims]
        kernel_sizes = list(kernel_size) if isinstance(kernel_size, (list, tuple)) else [kernel_size] * 3
        if len(kernel_sizes) != len(guidance_proj_dims):
            raise ValueError(
                f"MODEL.SEM_SEG_HEAD.KERNEL_SIZE={kernel_size}: give one kernel size, or one per "
                f"decoder stage ({len(guidance_proj_dims)})."
            )
        for i, g in enumerate(guidance_proj_dims):
            self.add_module(
                f"decoder{i + 1}",
                FusionStage(
                    stage_dims[i],
                    stage_dims[i + 1],
                    g,
                    kernel_sizes[i],
                    num_heads,
                    pooling_size,
                    cnext_norm_weight_decay,
                ),
            )
        for i, d in enumerate(stage_dims[:-1]):
            self.add_module(f"head{i}", nn.Conv2d(d, 1, kernel_size=3, padding=1))
        self.head = nn.Conv2d(decoder_dims[-1], 1, kernel_size=3, padding=1)
        self.class_chunk_size = class_chunk_size
        self.composed_rejection_scores = composed_rejection_scores
        self.spectral_embedding = SpectralConvolution() if spectral_cost_embedding else None
        # False: inference runs every class at once, as training does (whole tensors, no in-place writes: tracing).
        self.chunked_inference = True

    @classmethod
    def from_config(cls, cfg):
        head = cfg.MODEL.SEM_SEG_HEAD
        if head.CNEXT_TYPE != "V1":
            raise ValueError(
                f"MODEL.SEM_SEG_HEAD.CNEXT_TYPE={head.CNEXT_TYPE!r}: SED's released models use "
                '"V1" (ConvNeXt blocks), the only decoder block this project implements.'
            )
        return {
            "hidden_dim": head.HIDDEN_DIMS,
            "decoder_dims": tuple(head.DECODER_DIMS),
            "guidance_dims": tuple(head.DECODER_GUIDANCE_DIMS),
            "guidance_proj_dims": tuple(head.DECODER_GUIDANCE_PROJ_DIMS),
            "kernel_size": head.KERNEL_SIZE,
            "num_heads": head.NUM_HEADS,
            "pooling_size": tuple(head.POOLING_SIZES),
            "class_chunk_size": head.CLASS_CHUNK_SIZE,
            "cnext_norm_weight_decay": head.CNEXT_NORM_WEIGHT_DECAY,
            "composed_rejection_scores": cfg.TEST.FAST_COMPOSED_SCORES,
            "spectral_cost_embedding": cfg.TEST.SPECTRAL_COST_EMBEDDING,
        }

    @property
    def stages(self):
        return [self.decoder1, self.decoder2, self.decoder3]

    @property
    def aux_heads(self):
        return [self.head0, self.head1, self.head2]

    def forward(self, cost_map, guidance_features, with_aux=True):
        """
        Args:
            cost_map: (B, P, T, h, w) cosine similarities of pixel and text embeddings.
            guidance_features: [res4 (B, C4, 2h, 2w), res3 (4h), res2 (8h)] encoder features.
            with_aux: also return the auxiliary heads' logits (needed for the training losses).
        Returns:
            [final (B, T, 8h, 8w)] + ([aux0 (B, T, h, w), aux1 (2h), aux2 (4h)] if with_aux).
        In inference (eval mode, unless `chunked_inference` is False), the same numbers come from `_inference`,
        which bounds memory by running the stages' per-class parts in chunks of class maps.
        """
        b, _, t = cost_map.shape[:3]
        if not self.training and self.chunked_inference:
            outputs, _ = self._inference(cost_map, guidance_features, with_aux=with_aux)
            return [y.view(b, t, *y.shape[1:]) for y in outputs]
        cost = cost_map.transpose(1, 2).flatten(0, 1)  # (B*T, P, h, w)
        x = self.conv1(cost)
        aux = [_score(self.head0, x.detach())] if with_aux else []
        x = x.view(b, t, *x.shape[1:])
        for i, stage in enumerate(self.stages):
            cost = self.decoder_corr_guidance_projection[i](cost)
            appearance = self.decoder_guidance_projection[i](guidance_features[i])
            x = stage(x, appearance, cost.view(b, t, *cost.shape[1:]))
            if with_aux and i + 1 < len(self.stages):
                aux.append(_score(self.aux_heads[i + 1], x.flatten(0, 1).detach()))
        final = _score(self.head, x.flatten(0, 1))
        return [y.view(b, t, *y.shape[1:]) for y in [final, *aux]]

    @torch.no_grad()
    def forward_with_rejection(self, cost_map, guidance_features, topk):
        """Inference with category early rejection, for one image.

        After the cost embedding and after stages 1 and 2, the classes outside the top-k of the auxiliary head
        at every pixel are dropped; later stages (and their class attention) see only the kept classes.
        Args:
            cost_map: (1, P, T, h, w); guidance_features: as in `forward`, batch 1.
            topk: classes kept per pixel.
        Returns:
            logits: (K, 8h, 8w) final logits of the kept classes.
            kept: (K,) their indices among the T classes, ascending.
        """
        if cost_map.shape[0] != 1:
            raise ValueError(f"forward_with_rejection takes one image; got a batch of {cost_map.shape[0]}.")
        (logits,), kept = self._inference(cost_map, guidance_features, topk=topk)
        return logits, kept

    def rows_per_chunk(self, size, device):
        """Class maps per chunk of inference's per-class work, for a (h, w) cost map on `device`."""
        if self.class_chunk_size > 0:
            return self.class_chunk_size
        cpu = torch.device(device).type == "cpu"
        elements = AUTO_CHUNK_ELEMENTS_CPU if cpu else AUTO_CHUNK_ELEMENTS_OTHER_DEVICES
        return max(1, elements // (64 * size[0] * size[1]))

    @torch.no_grad()
    def _inference(self, cost_map, guidance_features, with_aux=False, topk=None):
        """`forward` (or, with `topk`, category early rejection for one image) without autograd, in chunks.

        The per-class work (ConvNeXt blocks, upsampling, fusion convolutions, heads, cost guidance) runs on
        chunks of `rows_per_chunk` class maps, whose intermediates are freed chunk by chunk; only the stage
        inputs and outputs exist for all classes at once. The class attention, which needs every class at a
        location, runs on chunks of locations. With `topk`, every class is scored by head0 chunk by chunk (with
        `composed_rejection_scores`, by head0 composed with the embedding, `_embedding_scores`); at large
        vocabularies the embeddings are not held but the kept classes embedded again (`HELD_EMBEDDING_BYTES`).
        Returns:
            outputs: [final (N, 8h, 8w)] + ([aux0 (N, h, w), aux1, aux2] if with_aux) with N = B * T rows
                (image-major), or only the kept rows with `topk`.
            kept: (K,) indices of the kept classes with `topk`, else None.
        """
        b, p, t, h, w = cost_map.shape
        cost = cost_map.transpose(1, 2).reshape(b * t, p, h, w)  # one (P, h, w) cost map per class and image
        chunk = self.rows_per_chunk((h, w), cost_map.device)
        spectral = self.spectral_embedding is not None and spectral_conv_supported(self.conv1, cost)
        embed_chunk = max(chunk, SPECTRAL_EMBEDDING_ROWS) if spectral else chunk

        def embed_rows(rows):
            return self.spectral_embedding(self.conv1, cost[rows]) if spectral else self.conv1(cost[rows])

        score = with_aux or topk is not None
        aux, kept = [], None
        memory = None
        if topk is None:
            memory = _SharedStageMemory(
                b * t,
                [self.conv1.out_channels * h * w]
                + [stage.out_channels * (h << (i + 1)) * (w << (i + 1)) for i, stage in enumerate(self.stages[:-1])],
            )

            def embed(rows):
                x = embed_rows(rows)
                return x, _full_precision_score(self.head0, x) if with_aux else None

            x, scores = _map_rows(embed, b * t, embed_chunk, lambda y: memory.allocate(0, y))
            if with_aux:
                aux.append(scores)
        else:
            # Rejection needs head0's score of every class but the cost embedding of the kept ones only. Above
            # HELD_EMBEDDING_BYTES each chunk's embedding is dropped once scored (or, with composed scores, never
            # built) and the kept classes are embedded again: (K, C, h, w) held instead of (T, C, h, w).
            composed = self._embedding_score_kernels() if self.composed_rejection_scores else None
            hold = (
                composed is None
                and b * t * self.conv1.out_channels * h * w * (4 if spectral else cost.element_size())
                <= HELD_EMBEDDING_BYTES
            )

            def score_rows(rows):
                if composed is not None:
                    return None, self._embedding_scores(cost[rows], *composed)
                x = embed_rows(rows)
                return x if hold else None, _full_precision_score(self.head0, x)

            x, scores = _map_rows(
                score_rows, b * t, embed_chunk if composed is None else chunk * EMBEDDING_SCORE_ROWS_PER_CLASS_MAP
            )
            kept = category_rejection(scores, topk)
            cost = cost[kept]
            t = len(kept)
            x = x[kept] if hold else _map_rows(lambda rows: (embed_rows(rows),), b * t, embed_chunk)[0]
        guidance = (cost, 0)  # the classes' cost guidance at the last level held (0: the raw cost maps)
        for i in range(len(self.stages)):
            last = i + 1 == len(self.stages)
            head = self.head if last else (self.aux_heads[i + 1] if score else None)
            allocate = None if memory is None or last else functools.partial(memory.allocate, i + 1)
            x, scores, held = self._stage_inference(
                i, x, guidance, guidance_features[i], b, t, chunk, head, last, allocate
            )
            guidance = guidance if held is None else (held, i + 1)
            if with_aux and not last:
                aux.append(scores)
            if topk is not None and not last:
                keep = category_rejection(scores, topk)
                x, guidance, kept = x[keep], (guidance[0][keep], guidance[1]), kept[keep]
                t = len(kept)
        return [scores, *aux], kept

    def _embedding_score_kernels(self):
        """head0 composed with the cost embedding `conv1` (both linear): (9, P, k, k) weight and (9,) bias, one
        output channel per tap (dy, dx) of head0's 3x3 kernel, summed over the embedding's channels."""
        with full_precision(self.conv1.weight.device):  # the weights as they are, not autocast's bf16/fp16
            head_weight = self.head0.weight[0].flatten(1)  # (C, 9)
            weight = torch.einsum("cd,cpkl->dpkl", head_weight, self.conv1.weight)
            return weight, head_weight.t() @ self.conv1.bias

    def _embedding_scores(self, cost, weight, bias):
        """(N, P, h, w) cost maps -> (N, h, w) = head0(conv1(cost)), without the (N, C, h, w) cost embedding.

        head0 zero-pads the embedding, so each of its taps is the composed convolution's channel for that tap,
        shifted into place (`_sum_shifted_taps`): 9 channels instead of C = 128, about 14x fewer multiply-adds.
        """
        with full_precision(cost.device):  # rejection ranks these scores (see `_full_precision_score`)
            taps = nn.functional.conv2d(cost.float(), weight, bias, padding=self.conv1.padding)
        return _sum_shifted_taps(taps.unflatten(1, self.head0.kernel_size), self.head0.padding, self.head0.bias[0])

    def _stage_inference(self, i, x, guidance, appearance, b, t, chunk, head, last, allocate=None):
        """Stage i on class maps x (B*T, C, H, W), which it overwrites; see `_inference`.

        Args:
            guidance: (maps, level): the classes' cost guidance after `level` of its projections (0: the raw cost
                maps (B*T, P, h, w)), from which this stage's is computed chunk by chunk.
            appearance: (B, C_i, 2H, 2W) encoder features of the stage.
            head: the head to score the stage's output with, or None.
            last: only the head's scores are needed, not the stage's output.
            allocate: gives the memory of the stage's output (see `_map_rows`), or None: new memory.
        Returns:
            (stage output (B*T, C_out, 2H, 2W) or None if `last`, head scores (B*T, 2H, 2W) or None, this stage's
            cost guidance (B*T, g, 2H, 2W) for the next stage to start from, or None: not held, when `last` or
            above HELD_GUIDANCE_BYTES).
        """
        stage = self.stages[i]
        n, c = x.shape[:2]
        # With 1x1 pooling (eval.sh's setting) the pooled maps are the maps themselves and only their sum with the
        # attention's output is used: the attention adds its output into x, location by location, instead of
        # gathering a second copy of every class map.
        in_place = stage.attention.pooling_size == (1, 1)
        # 1. per class: ConvNeXt block (written back into x) and the pooled maps, gathered as sequences of T classes
        sequences = pooled_maps = None
        for rows in chunk_slices(n, chunk):
            _, pooled = stage.class_features_(x[rows])
            if in_place:
                continue
            if sequences is None:
                sequences = pooled.new_empty(b, *pooled.shape[-2:], t, c)
                pooled_maps = sequences.permute(0, 3, 4, 1, 2)  # (B, T, C, h', w') view
            for image, classes, part in _image_segments(rows, t):
                pooled_maps[image, classes] = pooled[part]
        # 2. across classes: class attention at every pooled location, in place, on chunks of locations
        locations_per_chunk = max(1, ATTENTION_CHUNK_ELEMENTS // (t * c))
        if in_place:
            columns = x.view(b, t, c, -1)  # (B, T, C, H*W)
            for image in range(b):
                for locations in chunk_slices(columns.shape[-1], locations_per_chunk):
                    stage.attention.add_transformed_(columns[image, :, :, locations])
        else:
            flat = sequences.view(-1, t, c)
            for locations in chunk_slices(flat.shape[0], locations_per_chunk):
                stage.attention.transform_(flat[locations])
        # 3. per class: upsampling fused with appearance and cost guidance, per chunk of class maps
        appearance = stage.appearance_response(self.decoder_guidance_projection[i](appearance))
        if stage.channels_last_inference:  # the layout of the maps it is added to (a mixed-layout sum is slow)
            appearance = appearance.contiguous(memory_format=torch.channels_last)
        appearance = appearance.unsqueeze(1)
        maps = x.view(b, t, *x.shape[1:])

        source, level = guidance
        projections = self.decoder_corr_guidance_projection
        scale = 1 << (i + 1 - level)  # each projection upsamples 2x
        size = n * projections[i][0].out_channels * source.shape[-2] * source.shape[-1] * scale * scale
        hold = not last and size * source.element_size() <= HELD_GUIDANCE_BYTES

        def fuse(rows):
            guidance = source[rows]
            for projection in projections[level : i + 1]:
                guidance = projection(guidance)
            outs = [
                stage.fuse(
                    maps[image : image + 1, classes],
                    None if in_place else pooled_maps[image : image + 1, classes],
                    appearance[image : image + 1],
                    guidance[part][None],
                )[0]
                for image, classes, part in _image_segments(rows, t)
            ]
            out = outs[0] if len(outs) == 1 else torch.cat(outs)
            score = None if head is None else _full_precision_score(head, out)
            return None if last else out, score, guidance if hold else None

        return _map_rows(fuse, n, chunk, allocate)
