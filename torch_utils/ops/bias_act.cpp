// Python binding of the fused bias + activation CUDA op: argument checks, output allocation and
// the launch on torch's current stream. The kernel itself is in bias_act.cu / bias_act.h.

#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <climits>
#include "bias_act.h"

//------------------------------------------------------------------------
// An optional element tensor must be empty or match x in sizes, strides, dtype and device.

static void check_like_x(const torch::Tensor& t, const torch::Tensor& x, const char* name)
{
    if (t.numel() == 0)
        return;
    TORCH_CHECK(t.device() == x.device(), "bias_act: ", name, " must be on the same device as x");
    TORCH_CHECK(t.dtype() == x.dtype(), "bias_act: ", name, " must have the same dtype as x");
    TORCH_CHECK(t.sizes() == x.sizes(), "bias_act: ", name, " must have the same shape as x");
    TORCH_CHECK(t.strides() == x.strides(), "bias_act: ", name, " must have the same memory layout as x");
}

static const void* data_or_null(const torch::Tensor& t)
{
    return t.numel() ? t.data_ptr() : nullptr;
}

//------------------------------------------------------------------------
// y = bias_act(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp); see bias_act.h for the
// meaning of grad. Empty tensors stand for absent arguments.

static torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor xref, torch::Tensor yref,
                              torch::Tensor dy, int grad, int dim, int act, double alpha, double gain, double clamp)
{
    // Check the arguments.
    TORCH_CHECK(x.is_cuda(), "bias_act: x must reside on a CUDA device");
    TORCH_CHECK(x.is_non_overlapping_and_dense(), "bias_act: x must be non-overlapping and dense");
    TORCH_CHECK(x.scalar_type() == torch::kFloat16 || x.scalar_type() == torch::kFloat32 ||
                x.scalar_type() == torch::kFloat64, "bias_act: x must be float16, float32 or float64");
    TORCH_CHECK(x.numel() <= INT_MAX, "bias_act: x has too many elements");
    TORCH_CHECK(0 <= grad && grad <= 2, "bias_act: grad must be 0, 1 or 2");
    TORCH_CHECK(BA_LINEAR <= act && act <= BA_SWISH, "bias_act: unknown activation code");
    if (b.numel()) {
        TORCH_CHECK(0 <= dim && dim < x.dim(), "bias_act: dim is out of bounds");
        TORCH_CHECK(b.device() == x.device(), "bias_act: b must be on the same device as x");
        TORCH_CHECK(b.dtype() == x.dtype(), "bias_act: b must have the same dtype as x");
        TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: b must be 1-D with x.shape[dim] elements");
        TORCH_CHECK(b.is_contiguous(), "bias_act: b must be contiguous");
    }
    check_like_x(xref, x, "xref");
    check_like_x(yref, x, "yref");
    check_like_x(dy, x, "dy");
    TORCH_CHECK(grad != 2 || dy.numel(), "bias_act: grad=2 needs dy");

    // Allocate the output with the layout of x and fill in the parameters.
    const c10::cuda::CUDAGuard device_guard(x.device());
    torch::Tensor y = torch::empty_like(x);
    if (x.numel() == 0)
        return y;

    BiasActParams p;
    p.x         = x.data_ptr();
    p.b         = data_or_null(b);
    p.xref      = data_or_null(xref);
    p.yref      = data_or_null(yref);
    p.dy        = data_or_null(dy);
    p.out       = y.data_ptr();
    p.numel     = (int)x.numel();
    p.bias_len  = b.numel() ? (int)b.numel() : 0;
    p.bias_step = (b.numel() && x.size(dim) > 1) ? (int)x.stride(dim) : 1;  // any stride is legal for a size-1 dim
    p.act       = act;
    p.grad      = grad;
    p.alpha     = alpha;
    p.gain      = gain;
    p.clamp     = clamp;

    int dtype = (x.scalar_type() == torch::kFloat16) ? BA_FLOAT16 :
                (x.scalar_type() == torch::kFloat32) ? BA_FLOAT32 : BA_FLOAT64;
    int err = bias_act_launch(p, dtype, c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(err == 0, "bias_act: kernel launch failed: ", cudaGetErrorString((cudaError_t)err));
    return y;
}

//------------------------------------------------------------------------

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("bias_act", &bias_act, "Fused bias, activation, gain and clamp (CUDA)");
}

//------------------------------------------------------------------------
