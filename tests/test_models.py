import pytest
import torch
from torch import nn

from bench.config import ACTIVATIONS
from bench.models import Maxout, build_cnn, build_mlp, forward_order


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batchnorm", [True, False])
def test_mlp_and_cnn_shapes(activation, batchnorm):
    mlp = build_mlp(64, 10, depth=3, width=16, activation=activation, batchnorm=batchnorm, pieces=3)
    assert mlp(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    for shape in [(1, 40), (3, 8, 8)]:
        cnn = build_cnn(shape, 10, [4, 6], 3, activation, batchnorm, pieces=3)
        assert cnn(torch.randn(5, *shape)).shape == (5, 10)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mlp.modules())
    assert has_bn == batchnorm


def test_maxout_widens_the_layer_before_and_takes_the_max():
    mlp = build_mlp(10, 2, depth=1, width=4, activation="maxout", batchnorm=True, pieces=3)
    block = mlp.blocks[0]
    assert block.layer.out_features == 12 and block.norm.num_features == 12
    assert mlp.head.in_features == 4
    x = torch.arange(12.0).view(1, 12)
    assert torch.equal(Maxout(3)(x), torch.tensor([[2.0, 5.0, 8.0, 11.0]]))


def test_batchnorm_sits_between_layer_and_activation():
    mlp = build_mlp(10, 2, depth=1, width=4, activation="relu", batchnorm=True)
    order = [type(m) for m in mlp.blocks[0].children()]
    assert order[:3] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]


def test_forward_order_follows_the_forward_pass_not_registration():
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.last = nn.Linear(4, 2)  # registered first, called last
            self.first = nn.Linear(3, 4)

        def forward(self, x):
            return self.last(torch.relu(self.first(x)))

    m = Reversed()
    assert forward_order(m, torch.randn(2, 3)) == [m.first, m.last]
    assert [mod for mod in m.modules() if isinstance(mod, nn.Linear)] == [m.last, m.first]
