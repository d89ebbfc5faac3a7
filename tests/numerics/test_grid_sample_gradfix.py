"""grid_sample_gradfix against a naive float64 bilinear sampler and the stock op: values, gradcheck, double backward."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import grid_sample_gradfix

#----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def custom_op_enabled():
    saved = grid_sample_gradfix.enabled
    grid_sample_gradfix.enabled = True
    yield
    grid_sample_gradfix.enabled = saved

#----------------------------------------------------------------------------
# Bilinear sampling with zero padding and align_corners=False, one output pixel
# at a time: grid value -1 is the left edge of pixel 0, +1 the right edge of
# the last pixel.

def naive_grid_sample(x, grid):
    n, c, h, w = x.shape
    _, ho, wo, _ = grid.shape
    out = np.zeros([n, c, ho, wo])
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                px = ((grid[b, i, j, 0] + 1) * w - 1) / 2
                py = ((grid[b, i, j, 1] + 1) * h - 1) / 2
                x0, y0 = int(np.floor(px)), int(np.floor(py))
                for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
                    for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
                        if 0 <= yy < h and 0 <= xx < w:
                            out[b, :, i, j] += wy * wx * x[b, :, yy, xx]
    return out


def _problem(seed=0, shape=(2, 3, 5, 4), out_hw=(3, 4)):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    # Reach a little outside [-1, 1] so that zero padding is exercised.
    grid = torch.rand([shape[0], *out_hw, 2], generator=gen, dtype=torch.float64) * 2.6 - 1.3
    return x, grid.requires_grad_(True)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('enabled', [True, False])
def test_forward_matches_naive_reference(enabled):
    grid_sample_gradfix.enabled = enabled
    x, grid = _problem()
    got = grid_sample_gradfix.grid_sample(x, grid)
    ref = naive_grid_sample(x.detach().numpy(), grid.detach().numpy())
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=1e-12, atol=1e-12)
    assert ('_GridSampleOp' in type(got.grad_fn).__name__) == enabled


def test_gradcheck_input_and_grid():
    x, grid = _problem(1)
    assert torch.autograd.gradcheck(grid_sample_gradfix.grid_sample, (x, grid))


def test_gradgradcheck_input():
    x, grid = _problem(2)
    grid = grid.detach()
    assert torch.autograd.gradgradcheck(lambda x: grid_sample_gradfix.grid_sample(x, grid), (x,))


def test_input_gradient_is_differentiable_wrt_grid():
    # d/dx <g, sample(x, grid)> as a function of (g, grid), differentiated once more.
    x, grid = _problem(3)
    g = torch.randn([2, 3, 3, 4], dtype=torch.float64, requires_grad=True)
    def input_grad(g, grid):
        y = grid_sample_gradfix.grid_sample(x, grid)
        return torch.autograd.grad(y, [x], grad_outputs=[g], create_graph=True)[0]
    assert torch.autograd.gradcheck(input_grad, (g, grid))


def test_r1_penalty_matches_stock_op():
    # |d sum(tanh(y)) / dx|^2 differentiated w.r.t. x; the stock op supports this on current torch.
    results = []
    for enabled in (True, False):
        grid_sample_gradfix.enabled = enabled
        x, grid = _problem(4)
        y = grid_sample_gradfix.grid_sample(x, grid.detach())
        gx, = torch.autograd.grad(torch.tanh(y).sum(), [x], create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum(), [x])[0])
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_grid_gradient_cannot_be_differentiated_again():
    x, grid = _problem(5)
    y = grid_sample_gradfix.grid_sample(x, grid)
    g_grid, = torch.autograd.grad(y.square().sum(), [grid], create_graph=True)
    with pytest.raises(NotImplementedError, match='gradient w.r.t. the grid cannot be differentiated again'):
        torch.autograd.grad(g_grid.sum(), [x])

#----------------------------------------------------------------------------

def test_no_warnings_when_enabled():
    x, grid = _problem(6)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for _ in range(2):
            y = grid_sample_gradfix.grid_sample(x, grid)
            torch.autograd.grad(y.sum(), [x, grid])


def test_float32_matches_stock_op():
    x, grid = _problem(7)
    x32, grid32 = x.detach().float(), grid.detach().float()
    ref = F.grid_sample(x32, grid32, mode='bilinear', padding_mode='zeros', align_corners=False)
    torch.testing.assert_close(grid_sample_gradfix.grid_sample(x32, grid32), ref)


def test_wrong_rank_is_reported():
    x, grid = _problem(8)
    with pytest.raises(ValueError, match=r'expected 4-D input .* got shapes \(3, 5, 4\)'):
        grid_sample_gradfix.grid_sample(x[0], grid)

#----------------------------------------------------------------------------
