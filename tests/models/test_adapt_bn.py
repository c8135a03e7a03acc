"""AdaBN: BatchNorm statistics re-estimated from the target images only, nothing else changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nodescope.errors import ConfigError, DataError
from nodescope.models import adapt_batchnorm, batchnorm_layers


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                         nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(2, 2))


def test_statistics_come_from_the_target_batch_only() -> None:
    net = small_net()
    net.train()
    source = torch.randn(16, 3, 12, 12)
    with torch.no_grad():
        for _ in range(5):
            net(source)  # running stats of the 'source centre'
    net.eval()
    before_params = {k: v.clone() for k, v in net.state_dict().items()}
    target = torch.randn(10, 3, 12, 12) * 3 + 2  # another centre: other gain and offset
    adapted = adapt_batchnorm(net, target, batch_size=10)
    # the caller's network is untouched, buffers included
    for k, v in net.state_dict().items():
        assert torch.equal(v, before_params[k]), k
    # every parameter (conv/linear weights, BN affine) is as trained
    for (k, a), (_, b) in zip(net.named_parameters(), adapted.named_parameters(), strict=True):
        assert torch.equal(a, b), k
    # the first BN's statistics are those of the first conv's outputs over the target images (brute force)
    with torch.no_grad():
        z = net[0](target)
    bn = adapted[1]
    torch.testing.assert_close(bn.running_mean, z.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, z.permute(1, 0, 2, 3).reshape(4, -1).var(dim=1, unbiased=True))
    assert bn.momentum == net[1].momentum and not adapted.training
    # the second BN saw the first one's adapted output, with dropout off (eval), again from the target alone
    with torch.no_grad():
        z2 = adapted[4](adapted[3](adapted[2](adapted[1](z))))
    # (during re-estimation BN 1 normalised with the batch's biased variance, here with the unbiased running one:
    # a factor sqrt(999/1000) on its output, hence the tolerance)
    torch.testing.assert_close(adapted[5].running_mean, z2.mean(dim=(0, 2, 3)), atol=1e-3, rtol=1e-3)
    # statistics do not depend on the source: a network with other running stats adapts to the same values
    other = small_net()
    again = adapt_batchnorm(other, target, batch_size=10)
    for a, b in zip(batchnorm_layers(adapted), batchnorm_layers(again), strict=True):
        torch.testing.assert_close(a.running_mean, b.running_mean)
        torch.testing.assert_close(a.running_var, b.running_var)


def test_batches_average_to_the_target_mean() -> None:
    net = small_net().eval()
    target = torch.randn(9, 3, 12, 12) + 1
    # batches of 4: 4 + 5 (a last single image is merged), cumulative average of the batch means
    adapted = adapt_batchnorm(net, target, batch_size=4)
    with torch.no_grad():
        z = net[0](target)
    expect = (z[:4].mean(dim=(0, 2, 3)) + z[4:].mean(dim=(0, 2, 3))) / 2
    torch.testing.assert_close(adapted[1].running_mean, expect)
    assert int(adapted[1].num_batches_tracked) == 2


def test_errors() -> None:
    with pytest.raises(ConfigError, match="no BatchNorm"):
        adapt_batchnorm(nn.Sequential(nn.Conv2d(3, 2, 3)), torch.zeros(4, 3, 8, 8))
    with pytest.raises(DataError, match="at least 2"):
        adapt_batchnorm(small_net(), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ConfigError, match="batch_size"):
        adapt_batchnorm(small_net(), torch.zeros(4, 3, 8, 8), batch_size=1)
    assert np.isfinite(float(adapt_batchnorm(small_net(), torch.rand(3, 3, 8, 8))[1].running_var.sum()))
