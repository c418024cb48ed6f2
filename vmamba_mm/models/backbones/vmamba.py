"""VMamba: Visual State Space Model (Liu et al., NeurIPS 2024, arXiv 2401.10166).

One backbone class, :class:`VMamba`, covers the released family in its two designs:

* the current design (``tiny``, ``small``, ``base`` and the other released sizes of that design): a
  two-convolution stem, strided-conv downsampling, and blocks of ``x + SS2D(LN(x))`` followed by
  ``x + MLP(LN(x))``. SS2D is the paper's final form (no z-gate, depthwise conv without bias,
  d_state 1).
* the vanilla design (``vanilla-*``, the first release): a 4x4 patchify stem, Swin patch merging,
  SS2D-only blocks whose output is gated by SiLU(z).

Both run channels-last ``(B, H, W, C)`` from the stem to the stage outputs: LayerNorms and
projections act on the last dim without permutes, convolutions see an NCHW view of the
same memory (channels_last memory format, which cuDNN runs natively), and the fused
``kernels.ss2d`` reads and writes that layout directly. Each stage output is normalised by its
own LayerNorm and returned as a contiguous NCHW tensor, the layout mmdet's and mmseg's necks and
mmcv's compiled ops index.

The selective-scan core of SS2D lives in the standalone ``kernels`` package. Parameters
use this package's own names; :mod:`vmamba_mm.converters` maps official checkpoints
onto them.
"""
import math
from collections import OrderedDict
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torchvision.ops import StochasticDepth

import kernels
from kernels import BACKENDS
from vmamba_mm.loading import OUTNORMS_OPTIONAL, load_weights

ArchSpec = Union[str, dict]


class ToChannelsLast(nn.Module):
    """(B, C, H, W) -> (B, H, W, C), a view."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class ChannelsLastConv2d(nn.Conv2d):
    """``nn.Conv2d`` on ``(B, H, W, C)`` features.

    The permutes are views: the convolution gets an NCHW tensor in channels_last memory
    format and returns one, so no copy is made on either side. The weight is kept in
    channels_last format too: its gradient comes back in that format, and DDP wants gradients
    with the strides of their parameters (else it copies them and warns).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight = nn.Parameter(self.weight.detach().to(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class _LayerNormSavingHalf(torch.autograd.Function):
    """``F.layer_norm`` in fp32 whose backward keeps the normalized input in half precision.

    Autocast runs LayerNorm in fp32 and autograd keeps its fp32 input (4 bytes an element);
    this keeps ``(x - mean) * rstd`` in the autocast dtype (2 bytes) and the per-row rstd.
    The backward is LayerNorm's own on the normalized input (mean 0, rstd 1) scaled by rstd.
    Forward values are F.layer_norm's; gradients differ by the half rounding of the
    normalized input, the precision the Linear after it already keeps its input in.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, saved_dtype):
        with torch.autocast(x.device.type, enabled=False):
            x32 = x.float()
            out, mean, rstd = torch.native_layer_norm(x32, weight.shape, weight, bias, eps)
            normalized = ((x32 - mean) * rstd).to(saved_dtype)
        ctx.save_for_backward(normalized, rstd, weight, bias)
        ctx.input_dtype = x.dtype
        return out

    @staticmethod
    def backward(ctx, grad_out):
        normalized, rstd, weight, bias = ctx.saved_tensors
        needs = ctx.needs_input_grad
        with torch.autocast(grad_out.device.type, enabled=False):
            grad_x, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
                grad_out.float(), normalized.float(), weight.shape, torch.zeros_like(rstd), torch.ones_like(rstd),
                weight, bias, [needs[0], needs[1], needs[2]])
        if grad_x is not None:
            grad_x = (grad_x * rstd).to(ctx.input_dtype)
        return grad_x, grad_weight, grad_bias, None, None


class HalfSavingLayerNorm(nn.LayerNorm):
    """nn.LayerNorm that, while training under autocast, keeps its saved input in half precision.

    Used wherever autocast would run the norm in fp32 (on CUDA always, on the CPU for fp32
    input), so outputs are those of nn.LayerNorm; elsewhere it is nn.LayerNorm. Every
    LayerNorm of the backbone is one: under AMP their fp32 inputs are a large share of what
    the training forward keeps for the backward.

    An input of another dtype than the parameters outside autocast (SS2D's fp32 scan output in a
    model cast with ``model.half()`` or ``model.bfloat16()``) is normalised in the input's dtype,
    the parameters cast to it, as autocast would; nn.LayerNorm refuses mixed dtypes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device_type = x.device.type
        autocast = device_type in ('cpu', 'cuda') and torch.is_autocast_enabled(device_type)
        if self.weight is not None and x.dtype != self.weight.dtype and not autocast:
            bias = None if self.bias is None else self.bias.to(x.dtype)
            return F.layer_norm(x, self.normalized_shape, self.weight.to(x.dtype), bias, self.eps)
        if (self.weight is None or len(self.normalized_shape) != 1 or not torch.is_grad_enabled() or not autocast
                or (device_type == 'cpu' and x.dtype != torch.float32)):
            return super().forward(x)
        saved_dtype = torch.get_autocast_dtype(device_type)
        return _LayerNormSavingHalf.apply(x, self.weight, self.bias, self.eps, saved_dtype)


class SS2D(nn.Module):
    """2D selective scan: the token mixer of a VMamba block.

    in_proj -> depthwise 3x3 conv -> SiLU -> ``kernels.ss2d`` (cross-scan in 4 directions,
    selective scan, cross-merge) -> LayerNorm -> [* SiLU(z)] -> out_proj.

    Args:
        embed_dims (int): Block width C.
        ssm_ratio (float): Inner width D = int(ssm_ratio * C).
        d_state (int): SSM state size N.
        vanilla (bool): The vanilla form: ``in_proj`` C -> 2D whose second half gates the
            output through SiLU, and a depthwise conv with bias.
        kernel_backend (str, optional): ``kernels`` backend; None lets the package choose.
    """

    num_directions = 4

    def __init__(self,
                 embed_dims: int,
                 ssm_ratio: float,
                 d_state: int,
                 vanilla: bool = False,
                 kernel_backend: Optional[str] = None):
        super().__init__()
        self.inner_dims = int(ssm_ratio * embed_dims)
        self.dt_rank = math.ceil(embed_dims / 16)
        self.d_state = d_state
        self.vanilla = vanilla
        self.kernel_backend = kernel_backend
        k, d, r, n = self.num_directions, self.inner_dims, self.dt_rank, d_state

        self.in_proj = nn.Linear(embed_dims, 2 * d if vanilla else d, bias=False)
        self.conv = ChannelsLastConv2d(d, d, kernel_size=3, padding=1, groups=d, bias=vanilla)
        # Per direction k: x_proj_weight[k] maps u -> (dt, B, C); dt_proj_weight[k] maps dt -> delta.
        self.x_proj_weight = nn.Parameter(torch.empty(k, r + 2 * n, d))
        self.dt_proj_weight = nn.Parameter(torch.empty(k, d, r))
        self.dt_proj_bias = nn.Parameter(torch.empty(k, d))
        self.A_log = nn.Parameter(torch.empty(k * d, n))
        self.skip = nn.Parameter(torch.empty(k * d))
        self.out_norm = HalfSavingLayerNorm(d)
        self.out_proj = nn.Linear(d, embed_dims, bias=False)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self,
                             dt_min: float = 1e-3,
                             dt_max: float = 0.1,
                             dt_floor: float = 1e-4):
        """Mamba's initialisation of the SSM parameters (as in the official release)."""
        bound = self.inner_dims**-0.5  # nn.Linear's default for a D-input projection
        nn.init.uniform_(self.x_proj_weight, -bound, bound)
        bound = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj_weight, -bound, bound)
        # Step sizes log-uniform in [dt_min, dt_max]; the bias is their inverse softplus.
        log_dt = torch.rand_like(self.dt_proj_bias) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = log_dt.exp().clamp(min=dt_floor)
        self.dt_proj_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        # S4D-real: A = -(1, 2, ..., N) for every channel.
        state_index = torch.arange(1, self.d_state + 1, dtype=self.A_log.dtype, device=self.A_log.device)
        self.A_log.copy_(state_index.log().expand_as(self.A_log))
        self.skip.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = self.in_proj(x)
        if self.vanilla:
            x, z = x.chunk(2, dim=-1)
        # Under autocast x is half precision. The op computes in fp32 whatever its input (the
        # fused kernel upcasts a half x itself, a transient copy), so it gets the half tensor:
        # that is what autograd keeps for its backward, half the bytes of an fp32 copy.
        x = F.silu(self.conv(x))
        y = kernels.ss2d(
            x,
            self.x_proj_weight,
            self.dt_proj_weight,
            self.dt_proj_bias,
            -torch.exp(self.A_log.float()),
            self.skip.float(),
            channels_last=True,
            out_fp32=True,
            backend=self.kernel_backend)
        y = self.out_norm(y)
        if self.vanilla:
            y = y * F.silu(z)
        return self.out_proj(y.to(dtype))


def _gelu_linear_function(device_type: str) -> type:
    """``F.linear(gelu(h), weight, bias)`` as an autograd Function that saves h only.

    Autograd would keep both h (for GELU's backward) and gelu(h) (for the weight gradient),
    two tensors of the MLP's hidden width. The backward computes gelu(h) again instead, an
    elementwise pass over h; the products and their inputs are those of the plain
    Linear-GELU-Linear, so values and gradients are the same. ``custom_fwd``/``custom_bwd``
    run the backward under the forward's autocast state (one class per device type, since
    they take it as an argument); the weight is saved as the parameter and cast again in
    the backward, so no half copy of it outlives the forward.
    """

    class GeluLinear(torch.autograd.Function):

        @staticmethod
        @torch.amp.custom_fwd(device_type=device_type)
        def forward(ctx, h, weight, bias):
            ctx.save_for_backward(h, weight, bias)
            return F.linear(F.gelu(h), weight, bias)

        @staticmethod
        @torch.amp.custom_bwd(device_type=device_type)
        def backward(ctx, grad_out):
            h, weight, bias = ctx.saved_tensors
            activated = F.gelu(h)
            # As nn.Linear's backward: products of (positions, channels) matrices, in the dtype
            # that autocast (restored by custom_bwd) gives them.
            grad_2d = grad_out.reshape(-1, grad_out.shape[-1])
            activated_2d = activated.reshape(-1, activated.shape[-1])
            grad_h = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                grad_activated = grad_2d.mm(weight).view_as(h)
                grad_h = torch.ops.aten.gelu_backward(grad_activated, h)
            if ctx.needs_input_grad[1]:
                grad_weight = activated_2d.t().mm(grad_2d).t().to(weight.dtype)
            if bias is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_2d.sum(0).to(bias.dtype)
            return grad_h, grad_weight, grad_bias

    GeluLinear.__name__ = GeluLinear.__qualname__ = f'GeluLinear_{device_type}'
    return GeluLinear


# custom_fwd takes the autocast device type as an argument: one Function per device type.
_GELU_LINEAR = {device_type: _gelu_linear_function(device_type) for device_type in ('cpu', 'cuda')}


class Mlp(nn.Module):
    """Linear -> GELU -> Linear (exact erf GELU, as ``nn.GELU()``).

    While gradients are recorded, GELU and ``fc2`` run as one autograd Function that keeps
    only fc1's output for the backward and recomputes the GELU there (2 bytes per hidden
    element less under AMP, 4 in fp32; docs/performance.md, activation memory). Without gradients,
    and on devices other than CPU and CUDA, it is the plain composition.
    """

    def __init__(self, embed_dims: int, hidden_dims: int):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def extra_repr(self) -> str:
        return 'act=GELU (recomputed in backward)'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        gelu_linear = _GELU_LINEAR.get(h.device.type)
        if gelu_linear is None or not torch.is_grad_enabled() or torch.jit.is_tracing():
            return self.fc2(F.gelu(h))
        return gelu_linear.apply(h, self.fc2.weight, self.fc2.bias)


class VSSBlock(nn.Module):
    """``x + DropPath(SS2D(LN(x)))``, then (current design only) ``x + DropPath(MLP(LN(x)))``."""

    mlp_ratio = 4.0

    def __init__(self,
                 embed_dims: int,
                 ssm_ratio: float,
                 d_state: int,
                 drop_path: float = 0.0,
                 vanilla: bool = False,
                 kernel_backend: Optional[str] = None):
        super().__init__()
        self.norm1 = HalfSavingLayerNorm(embed_dims)
        self.ssm = SS2D(embed_dims, ssm_ratio, d_state, vanilla=vanilla, kernel_backend=kernel_backend)
        self.drop_path = StochasticDepth(drop_path, mode='row') if drop_path > 0 else nn.Identity()
        if vanilla:
            self.norm2 = self.mlp = None
        else:
            self.norm2 = HalfSavingLayerNorm(embed_dims)
            self.mlp = Mlp(embed_dims, int(embed_dims * self.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.ssm(self.norm1(x)))
        if self.mlp is not None:
            x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x


class PatchMerging(nn.Module):
    """Swin patch merging: 2x2 neighbours -> LN -> Linear 4C -> 2C.

    Odd sizes are zero-padded at the bottom/right.
    """

    def __init__(self, in_dims: int, out_dims: int):
        super().__init__()
        self.norm = HalfSavingLayerNorm(4 * in_dims)
        self.reduction = nn.Linear(4 * in_dims, out_dims, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[1:3]
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        # Neighbour order (0,0), (1,0), (0,1), (1,1) as in Swin: it fixes the layout of
        # `reduction.weight`, so pretrained weights depend on it.
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class VMambaStage(nn.Module):
    """A sequence of :class:`VSSBlock` and the downsample that feeds the next stage."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: Optional[nn.Module] = None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


class VMamba(BaseModule):
    """VMamba backbone (mmpretrain / mmdet / mmseg).

    Args:
        arch (str | dict): A name from :attr:`arch_zoo`, or a dict with the structure keys
            ``dims`` (int for the first stage, doubled per stage, or one int per stage),
            ``depths``, ``ssm_ratio``, ``d_state`` and optionally ``vanilla`` (the vanilla
            design, default False). Training settings are not part of an arch.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned, each normalised by
            its own LayerNorm ``outnorm{i}``; -1 means the last stage. Defaults to all four.
        drop_path_rate (float): Stochastic depth rate, rising linearly from 0 at the first
            block to this value at the last. Defaults to 0 (no stochastic depth), as in timm:
            it belongs to a training recipe, and every config of this package sets its
            recipe's rate.
        frozen_stages (int): Freeze the stem (0) and stages ``0..frozen_stages-1`` with their
            output norms; -1 freezes nothing.
        norm_eval (bool): Keep the normalisation layers in eval mode while training. VMamba's
            LayerNorms hold no running statistics, so this only matters to code that
            inspects ``training``; it is accepted for config compatibility with other mm
            backbones.
        with_cp (bool): Checkpoint the activations of each block (saves memory on large
            detection/segmentation inputs at the cost of a second forward).
        kernel_backend (str, optional): Backend for ``kernels.ss2d`` (e.g. ``'torch'`` or
            ``'triton'``); None lets the kernels package choose per device.
        init_cfg (dict, optional): mmengine init config. ``dict(type='Pretrained',
            checkpoint=...)`` accepts official VMamba checkpoints as well as mm ones and
            loads them strictly (see :meth:`init_weights`).
    """

    # Structure only: the released sizes as the official configs define them (`s1l8` = ssm_ratio 1,
    # 8 blocks in stage 3). Recipes (drop path, weight decay) live in the configs.
    arch_zoo = {
        # VMamba-T/S/B of the paper: s1l8, s2l15, s2l15.
        'tiny': dict(dims=96, depths=(2, 2, 8, 2), ssm_ratio=1.0, d_state=1),
        'small': dict(dims=96, depths=(2, 2, 15, 2), ssm_ratio=2.0, d_state=1),
        'base': dict(dims=128, depths=(2, 2, 15, 2), ssm_ratio=2.0, d_state=1),
        # The other released sizes of the current design.
        'tiny-s2l5': dict(dims=96, depths=(2, 2, 5, 2), ssm_ratio=2.0, d_state=1),
        'small-s1l20': dict(dims=96, depths=(2, 2, 20, 2), ssm_ratio=1.0, d_state=1),
        'base-s1l20': dict(dims=128, depths=(2, 2, 20, 2), ssm_ratio=1.0, d_state=1),
        # The vanilla design.
        'vanilla-tiny': dict(dims=96, depths=(2, 2, 9, 2), ssm_ratio=2.0, d_state=16, vanilla=True),
        'vanilla-small': dict(dims=96, depths=(2, 2, 27, 2), ssm_ratio=2.0, d_state=16, vanilla=True),
        'vanilla-base': dict(dims=128, depths=(2, 2, 27, 2), ssm_ratio=2.0, d_state=16, vanilla=True),
    }
    required_arch_keys = frozenset({'dims', 'depths', 'ssm_ratio', 'd_state'})
    optional_arch_keys = frozenset({'vanilla'})
    # Constructor arguments that are easily written into an arch dict by mistake.
    _constructor_keys = frozenset({'drop_path_rate', 'out_indices', 'in_channels', 'with_cp', 'kernel_backend'})

    def __init__(self,
                 arch: ArchSpec = 'tiny',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 drop_path_rate: float = 0.0,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 kernel_backend: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self.parse_arch(arch)
        depths = tuple(self.arch_settings['depths'])
        self.num_stages = len(depths)
        self.dims = self.stage_dims(self.arch_settings['dims'], self.num_stages)
        self.vanilla = self.arch_settings.get('vanilla', False)
        self.in_channels = in_channels
        self.out_indices = self.parse_out_indices(out_indices, self.num_stages)
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages={frozen_stages}: expected -1 (none) to {self.num_stages} (all stages).')
        if kernel_backend not in (None, *BACKENDS):
            raise ValueError(f'Unknown kernel_backend {kernel_backend!r}; choose one of {BACKENDS} '
                             '(or None to let the kernels package choose).')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.kernel_backend = kernel_backend
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f'drop_path_rate={drop_path_rate}: expected a rate in [0, 1).')

        self.patch_embed = self.make_stem(in_channels, self.dims[0])
        # Computed on the CPU so the model can also be built on the meta device.
        drop_path_rates = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            first_block = sum(depths[:i])
            blocks = [
                VSSBlock(
                    self.dims[i],
                    ssm_ratio=self.arch_settings['ssm_ratio'],
                    d_state=self.arch_settings['d_state'],
                    drop_path=drop_path_rates[first_block + j],
                    vanilla=self.vanilla,
                    kernel_backend=kernel_backend) for j in range(depth)
            ]
            downsample = self.make_downsample(self.dims[i], self.dims[i + 1]) if i + 1 < self.num_stages else None
            self.stages.append(VMambaStage(blocks, downsample))

        for i in self.out_indices:
            self.add_module(f'outnorm{i}', HalfSavingLayerNorm(self.dims[i]))

        self.apply(self._init_linear)
        self._freeze_stages()

    @classmethod
    def parse_arch(cls, arch: ArchSpec) -> dict:
        """The structure settings of ``arch``: a copy of an :attr:`arch_zoo` entry, or the checked dict."""
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise ValueError(f'Unknown VMamba arch {arch!r}; choose one of {sorted(cls.arch_zoo)} '
                                 f'or pass a dict with keys {sorted(cls.required_arch_keys)}.')
            return dict(cls.arch_zoo[arch.lower()])
        if not isinstance(arch, dict):
            raise TypeError(f'VMamba arch must be a name or a dict, got {type(arch).__name__}.')
        misplaced = set(arch) & cls._constructor_keys
        if misplaced:
            raise ValueError(f'VMamba arch dict holds {sorted(misplaced)}: these are VMamba arguments, not arch '
                             f'keys; set them beside arch (e.g. model.backbone.drop_path_rate).')
        missing = cls.required_arch_keys - set(arch)
        unknown = set(arch) - cls.required_arch_keys - cls.optional_arch_keys
        if missing or unknown:
            raise ValueError(f'VMamba arch dict: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}; '
                             f'required {sorted(cls.required_arch_keys)}, optional {sorted(cls.optional_arch_keys)}.')
        return dict(arch)

    @staticmethod
    def stage_dims(dims: Union[int, Sequence[int]], num_stages: int) -> list:
        if isinstance(dims, int):
            return [dims * 2**i for i in range(num_stages)]
        if len(dims) != num_stages:
            raise ValueError(f'VMamba arch: {len(dims)} dims for {num_stages} stages.')
        return list(dims)

    @staticmethod
    def parse_out_indices(out_indices: Union[int, Sequence[int]], num_stages: int) -> tuple:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        parsed = []
        for index in out_indices:
            if not -num_stages <= index < num_stages:
                raise ValueError(f'out_indices {tuple(out_indices)}: {index} is not a stage of a '
                                 f'{num_stages}-stage VMamba.')
            parsed.append(index % num_stages)
        return tuple(sorted(set(parsed)))

    def make_stem(self, in_channels: int, embed_dims: int) -> nn.Module:
        """Stride-4 stem: a 4x4 patchify conv (vanilla) or two 3x3 stride-2 convs (current design).

        It takes NCHW images and returns channels-last features.
        """
        if self.vanilla:
            return nn.Sequential(
                OrderedDict(
                    proj=nn.Conv2d(in_channels, embed_dims, kernel_size=4, stride=4),
                    to_channels_last=ToChannelsLast(),
                    norm=HalfSavingLayerNorm(embed_dims)))
        hidden_dims = embed_dims // 2
        return nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, hidden_dims, kernel_size=3, stride=2, padding=1),
                to_channels_last=ToChannelsLast(),
                norm1=HalfSavingLayerNorm(hidden_dims),
                act=nn.GELU(),
                conv2=ChannelsLastConv2d(hidden_dims, embed_dims, kernel_size=3, stride=2, padding=1),
                norm2=HalfSavingLayerNorm(embed_dims)))

    def make_downsample(self, in_dims: int, out_dims: int) -> nn.Module:
        """Halves the resolution: Swin patch merging (vanilla) or a 3x3 stride-2 conv + LN (current design)."""
        if self.vanilla:
            return PatchMerging(in_dims, out_dims)
        return nn.Sequential(
            OrderedDict(
                conv=ChannelsLastConv2d(in_dims, out_dims, kernel_size=3, stride=2, padding=1),
                norm=HalfSavingLayerNorm(out_dims)))

    @staticmethod
    def _init_linear(module: nn.Module):
        # Convolutions and norms keep PyTorch's default init and SS2D its own, as in the
        # official release.
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def init_weights(self):
        """Load ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=None)`` strictly.

        Official VMamba checkpoints (current or legacy key names, with or without a
        ``model`` wrapper) are converted on the fly; mm checkpoints are loaded as they are,
        after taking the keys under ``prefix``. Only the ``outnorm*`` layers may be missing:
        they are new layers of a detection/segmentation backbone and keep their init.
        Any other missing, unexpected or mis-shaped key raises
        :class:`~vmamba_mm.loading.IncompatibleCheckpointError`.
        ``strict=False`` in init_cfg loads only the keys that fit and names the others in a warning.
        """
        if self.init_cfg is None or self.init_cfg.get('type') != 'Pretrained':
            super().init_weights()
            return
        load_weights(
            self,
            self.init_cfg['checkpoint'],
            task='backbone',
            prefix=self.init_cfg.get('prefix'),
            strict=self.init_cfg.get('strict', True),
            optional=OUTNORMS_OPTIONAL)
        self._is_init = True

    def forward(self, x: torch.Tensor) -> tuple:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'VMamba expects images of shape (B, {self.in_channels}, H, W), '
                             f'got a tensor of shape {tuple(x.shape)}.')
        if x.numel() == 0:
            raise ValueError(f'VMamba got an empty input of shape {tuple(x.shape)}.')
        # Checked outside training only: the check reads a flag back from the GPU, which a training step should not
        # wait for; in training, NonFiniteLossHook names non-finite inputs when the loss they produce stops the run.
        if (not self.training and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
                and not torch.isfinite(x).all()):
            raise ValueError(f'VMamba input holds {int((~torch.isfinite(x)).sum())} non-finite values (NaN/inf); '
                             'check the data and its normalisation (a std of 0 divides by zero).')
        stem_dtype = next(self.patch_embed.parameters()).dtype
        if x.dtype != stem_dtype and not torch.is_autocast_enabled(x.device.type):
            x = x.to(stem_dtype)  # a .half() / .bfloat16() model still gets fp32 images from its preprocessor
        x = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            for block in stage.blocks:
                if self.with_cp and torch.is_grad_enabled():
                    x = cp.checkpoint(block, x, use_reentrant=False)
                else:
                    x = block(x)
            if i in self.out_indices:
                # Standard NCHW memory, not a channels-last view: compiled ops downstream
                # (mmcv's RoIAlign, behind FPN convs that keep their input's layout) index
                # raw NCHW memory, and the Mask R-CNN demo stopped learning on the view.
                outs.append(getattr(self, f'outnorm{i}')(x).permute(0, 3, 1, 2).contiguous())
            if stage.downsample is not None:
                x = stage.downsample(x)
        return tuple(outs)

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed] + list(self.stages[:self.frozen_stages])
        frozen += [getattr(self, f'outnorm{i}') for i in self.out_indices if i < self.frozen_stages]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.LayerNorm):
                    module.eval()
        return self
