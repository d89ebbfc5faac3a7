"""Drop-in bilinear grid_sample whose input gradient can be differentiated again (R1 through augmentation)."""

import torch

#----------------------------------------------------------------------------

enabled = False  # True = use the custom autograd op below instead of the stock grid_sample.

#----------------------------------------------------------------------------
# torch.nn.functional.grid_sample with mode='bilinear', padding_mode='zeros',
# align_corners=False. With `enabled`, gradients w.r.t. `input` support any
# order; gradients w.r.t. `grid` are first order only.

def grid_sample(input, grid):
    if enabled:
        if input.ndim != 4 or grid.ndim != 4:
            raise ValueError(f'grid_sample_gradfix: expected 4-D input [N, C, H, W] and grid [N, Ho, Wo, 2], '
                             f'got shapes {tuple(input.shape)} and {tuple(grid.shape)}')
        return _GridSampleOp.apply(input, grid)
    return torch.nn.functional.grid_sample(input=input, grid=grid, mode='bilinear', padding_mode='zeros',
                                           align_corners=False)

#----------------------------------------------------------------------------
# aten's integer codes for bilinear interpolation and zero padding.

_BILINEAR = 0
_ZEROS = 0

#----------------------------------------------------------------------------
# Forward sampling. Backward hands both gradients to _GridSampleBackwardOp.

class _GridSampleOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, grid):
        ctx.save_for_backward(input, grid)
        return torch.nn.functional.grid_sample(input=input, grid=grid, mode='bilinear', padding_mode='zeros',
                                               align_corners=False)

    @staticmethod
    def backward(ctx, grad_output):
        input, grid = ctx.saved_tensors
        want_input, want_grid = ctx.needs_input_grad[:2]
        grad_input, grad_grid = _GridSampleBackwardOp.apply(grad_output, input, grid, want_input, want_grid)
        # Pass on only what was asked for, so that unused results stay out of the graph.
        return (grad_input if want_input else None), (grad_grid if want_grid else None)

#----------------------------------------------------------------------------
# Both first-order gradients of grid sampling, as a differentiable function of
# (grad_output, input, grid). The input gradient S(grid)^T grad_output does not
# depend on `input`; since <g, S^T grad_output> = <grad_output, S g>, its
# gradients w.r.t. grad_output and grid are a grid sample of g and the grid
# gradient of that sample. Gradients of grad_grid itself (second derivatives of
# the bilinear weights) are not implemented and raise instead of being zero.

class _GridSampleBackwardOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_output, input, grid, want_input, want_grid):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(grad_output, grid)
        grad_input, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad_output, input, grid, _BILINEAR, _ZEROS, False, [bool(want_input), bool(want_grid)])
        return grad_input, grad_grid

    @staticmethod
    def backward(ctx, grad2_grad_input, grad2_grad_grid):
        grad_output, grid = ctx.saved_tensors
        if grad2_grad_grid is not None:
            raise NotImplementedError('grid_sample_gradfix: the gradient w.r.t. the grid cannot be differentiated '
                                      'again; detach the grid, or set grid_sample_gradfix.enabled = False')
        grad2_grad_output = grad2_grid = None
        if grad2_grad_input is not None:
            if ctx.needs_input_grad[0]:
                grad2_grad_output = _GridSampleOp.apply(grad2_grad_input, grid)
            if ctx.needs_input_grad[2]:
                _, grad2_grid = _GridSampleBackwardOp.apply(grad_output, grad2_grad_input, grid, False, True)
        return grad2_grad_output, None, grad2_grid, None, None

#----------------------------------------------------------------------------
