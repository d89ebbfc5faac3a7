// Python binding of the upfirdn2d CUDA op: argument checks, output allocation (keeping the memory
// format of x) and the launch on torch's current stream. The kernels are in upfirdn2d.cu / .h.

#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <climits>
#include "upfirdn2d.h"

//------------------------------------------------------------------------
// y = upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain)
// x: [N, C, H, W] float16/32/64 on a CUDA device; f: [fh, fw] float32 on the same device.

static torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor f, int upx, int upy, int downx, int downy,
                               int padx0, int padx1, int pady0, int pady1, bool flip, double gain)
{
    // Check the arguments.
    TORCH_CHECK(x.is_cuda(), "upfirdn2d: x must reside on a CUDA device");
    TORCH_CHECK(f.device() == x.device(), "upfirdn2d: f must be on the same device as x");
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must have rank 4");
    TORCH_CHECK(f.dim() == 2, "upfirdn2d: f must have rank 2");
    TORCH_CHECK(x.scalar_type() == torch::kFloat16 || x.scalar_type() == torch::kFloat32 ||
                x.scalar_type() == torch::kFloat64, "upfirdn2d: x must be float16, float32 or float64");
    TORCH_CHECK(f.scalar_type() == torch::kFloat32, "upfirdn2d: f must be float32");
    TORCH_CHECK(x.numel() <= INT_MAX && f.numel() <= INT_MAX, "upfirdn2d: too many elements");
    for (int i = 0; i < 4; i++)
        TORCH_CHECK(x.stride(i) <= INT_MAX, "upfirdn2d: x has too large strides; make it contiguous first");
    TORCH_CHECK(f.size(0) >= 1 && f.size(1) >= 1, "upfirdn2d: f must not be empty");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: up and down must be >= 1");

    // Output size of the valid filter positions, kept every down-th.
    long long ext_h = (long long)x.size(2) * upy + pady0 + pady1;
    long long ext_w = (long long)x.size(3) * upx + padx0 + padx1;
    TORCH_CHECK(ext_h >= f.size(0) && ext_w >= f.size(1), "upfirdn2d: the padded image is smaller than the filter");
    long long out_h = (ext_h - f.size(0)) / downy + 1;
    long long out_w = (ext_w - f.size(1)) / downx + 1;
    TORCH_CHECK(x.size(0) * x.size(1) * out_h * out_w <= INT_MAX, "upfirdn2d: output has too many elements");
    TORCH_CHECK(ext_h <= INT_MAX && ext_w <= INT_MAX, "upfirdn2d: upsampled image is too large");

    // Allocate the output in the memory format of x.
    const c10::cuda::CUDAGuard device_guard(x.device());
    torch::Tensor fc = f.contiguous();
    torch::Tensor y = torch::empty({x.size(0), x.size(1), out_h, out_w},
                                   x.options().memory_format(x.suggest_memory_format()));
    if (y.numel() == 0)
        return y;

    Upfirdn2dParams p;
    p.x        = x.data_ptr();
    p.f        = fc.data_ptr<float>();
    p.y        = y.data_ptr();
    p.batch    = (int)x.size(0);
    p.channels = (int)x.size(1);
    p.in_h     = (int)x.size(2);
    p.in_w     = (int)x.size(3);
    p.out_h    = (int)out_h;
    p.out_w    = (int)out_w;
    for (int i = 0; i < 4; i++) {
        p.x_stride[i] = (int)x.stride(i);
        p.y_stride[i] = (int)y.stride(i);
    }
    p.fh       = (int)fc.size(0);
    p.fw       = (int)fc.size(1);
    p.upx      = upx;
    p.upy      = upy;
    p.downx    = downx;
    p.downy    = downy;
    p.padx0    = padx0;
    p.pady0    = pady0;
    p.flip     = flip ? 1 : 0;
    p.gain     = gain;
    p.channel_fastest = (y.stride(1) == 1 && y.size(1) > 1) ? 1 : 0;

    int dtype = (x.scalar_type() == torch::kFloat16) ? UF_FLOAT16 :
                (x.scalar_type() == torch::kFloat32) ? UF_FLOAT32 : UF_FLOAT64;
    int err = upfirdn2d_launch(p, dtype, c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(err == 0, "upfirdn2d: kernel launch failed: ", cudaGetErrorString((cudaError_t)err));
    return y;
}

//------------------------------------------------------------------------

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("upfirdn2d", &upfirdn2d, "Upsample, pad, FIR-filter and downsample 2-D images (CUDA)");
}

//------------------------------------------------------------------------
