"""MLP and CNN builders. A network is a list of `Block`s (layer -> BatchNorm -> activation -> pool)
followed by a linear `head`; init strategies walk `net.blocks` and `net.head`, or find the Linear and
Conv layers in forward order with hooks (`forward_order`)."""

from __future__ import annotations

import torch
from torch import nn

from bench.config import ACTIVATIONS, MLP_MODELS, MODELS, ConfigError

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


class Maxout(nn.Module):
    """Max over `pieces` consecutive channels: (N, C*k, ...) -> (N, C, ...). Goodfellow et al. 2013."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, ck = x.shape[:2]
        return x.view(n, ck // self.pieces, self.pieces, *x.shape[2:]).amax(dim=2)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def make_activation(
    name: str, channels: int, negative_slope: float = 0.01, pieces: int = 2, inplace: bool = False
) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=inplace)
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope, inplace=inplace)
    if name == "prelu":
        return nn.PReLU(channels)
    if name == "rrelu":
        return nn.RReLU(inplace=inplace)  # slopes ~ U(1/8, 1/3) in training, their mean at eval (Xu et al.)
    if name == "maxout":
        return Maxout(pieces)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ConfigError("activation", name, "allowed values are " + ", ".join(ACTIVATIONS))


class Block(nn.Module):
    """layer -> BatchNorm (optional) -> activation -> pool (cnn). BatchNorm sits between the layer and
    its nonlinearity, as in Ioffe & Szegedy 2015."""

    def __init__(self, layer: nn.Module, norm: nn.Module, act: nn.Module, pool: nn.Module):
        super().__init__()
        self.layer, self.norm, self.act, self.pool = layer, norm, act, pool

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The block without its pooling: what a (convolutional) autoencoder reconstructs from."""
        return self.act(self.norm(self.layer(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encode(x))


class Net(nn.Module):
    def __init__(self, blocks: list[Block], head: nn.Linear, flatten_input: bool):
        super().__init__()
        self.flatten_input = flatten_input
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def features(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Output of the first `upto` blocks (all of them by default)."""
        if self.flatten_input:
            x = x.flatten(1)
        for block in self.blocks[:upto]:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def _norm(kind: str, channels: int, batchnorm: bool) -> nn.Module:
    if not batchnorm:
        return nn.Identity()
    return {"linear": nn.BatchNorm1d, "conv1d": nn.BatchNorm1d, "conv2d": nn.BatchNorm2d}[kind](channels)


def build_mlp(
    in_features: int,
    num_classes: int,
    depth: int,
    width: int,
    activation: str,
    batchnorm: bool,
    negative_slope: float = 0.01,
    pieces: int = 2,
    inplace: bool = False,
) -> Net:
    k = pieces if activation == "maxout" else 1  # maxout: the layer before is k times wider
    blocks, fan_in = [], in_features
    for _ in range(depth):
        blocks.append(
            Block(
                nn.Linear(fan_in, width * k),
                _norm("linear", width * k, batchnorm),
                make_activation(activation, width, negative_slope, pieces, inplace),
                nn.Identity(),
            )
        )
        fan_in = width
    return Net(blocks, nn.Linear(fan_in, num_classes), flatten_input=True)


def build_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: list[int],
    kernel_size: int,
    activation: str,
    batchnorm: bool,
    negative_slope: float = 0.01,
    pieces: int = 2,
    inplace: bool = False,
) -> Net:
    """Conv blocks with 'same' padding and 2x max-pooling; Conv1d for (C, L) inputs, Conv2d for (C, H, W)."""
    if len(input_shape) not in (2, 3):
        raise ValueError(f"cnn needs inputs of shape (C, L) or (C, H, W), got {input_shape}")
    two_d = len(input_shape) == 3
    conv, pool, kind = (nn.Conv2d, nn.MaxPool2d, "conv2d") if two_d else (nn.Conv1d, nn.MaxPool1d, "conv1d")
    k = pieces if activation == "maxout" else 1
    blocks, c_in, spatial = [], input_shape[0], list(input_shape[1:])
    for c in channels:
        can_pool = min(spatial) >= 2
        blocks.append(
            Block(
                conv(c_in, c * k, kernel_size, padding=kernel_size // 2),
                _norm(kind, c * k, batchnorm),
                make_activation(activation, c, negative_slope, pieces, inplace),
                pool(2) if can_pool else nn.Identity(),
            )
        )
        spatial = [s // 2 for s in spatial] if can_pool else spatial
        c_in = c
    flat = c_in * int(torch.tensor(spatial).prod())
    return Net(blocks, nn.Linear(flat, num_classes), flatten_input=False)


def build_model(model_cfg, activation_cfg, input_shape: tuple[int, ...], num_classes: int) -> Net:
    # each activation's schema holds only the keys it reads (bench/config.py); the rest keep their defaults
    options = {k: activation_cfg[k] for k in ("negative_slope", "pieces", "inplace") if k in activation_cfg}
    act = dict(activation=activation_cfg.name, batchnorm=model_cfg.batchnorm, **options)
    if model_cfg.name in MLP_MODELS:
        return build_mlp(int(torch.tensor(input_shape).prod()), num_classes, model_cfg.depth, model_cfg.width, **act)
    if model_cfg.name == "cnn":
        return build_cnn(
            input_shape, num_classes, list(model_cfg.channels)[: model_cfg.depth], model_cfg.kernel_size, **act
        )
    raise ConfigError("model", model_cfg.name, "allowed values are " + ", ".join(MODELS))


def layer_macs(model: nn.Module, x: torch.Tensor) -> dict[nn.Module, float]:
    """Multiply-adds per example of each weight layer (Linear/Conv), in the order a forward pass on one
    example of `x` meets them (eval mode: BatchNorm takes one example and its statistics stay as they are)."""
    macs: dict[nn.Module, float] = {}

    def count(mod, inputs, output):  # weight.numel() multiply-adds per output position
        macs.setdefault(mod, mod.weight.numel() * output[0].numel() / mod.weight.shape[0])

    was_training = model.training
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, WEIGHT_LAYERS)]
    try:
        model.eval()
        with torch.no_grad():
            model(x[:1])
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return macs


def forward_order(model: nn.Module, x: torch.Tensor, types: tuple = WEIGHT_LAYERS) -> list[nn.Module]:
    """The modules of `types` in the order a forward pass on `x` calls them (not registration order)."""
    seen: list[nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda mod, i, o: seen.append(mod) if mod not in seen else None)
        for m in model.modules()
        if isinstance(m, types)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen
