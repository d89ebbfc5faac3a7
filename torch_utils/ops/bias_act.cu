// CUDA kernel of the fused bias + activation op: one grid-stride loop over the elements in memory
// order; the math lives in bias_act.h. Needs only the CUDA runtime (no torch headers).

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include "bias_act.h"

//------------------------------------------------------------------------

template <typename T>
__global__ void bias_act_kernel(BiasActParams p)
{
    long long step = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < p.numel; i += step)
        bias_act_element<T>(p, (int)i);
}

//------------------------------------------------------------------------

template <typename T>
static cudaError_t launch_typed(const BiasActParams& p, cudaStream_t stream)
{
    const int threads = 256;
    const int max_blocks = 65536;   // each thread loops when there are more elements
    long long blocks = ((long long)p.numel + threads - 1) / threads;
    if (blocks > max_blocks)
        blocks = max_blocks;
    if (blocks < 1)
        return cudaSuccess;
    bias_act_kernel<T><<<(unsigned int)blocks, threads, 0, stream>>>(p);
    return cudaGetLastError();
}

int bias_act_launch(const BiasActParams& p, int dtype, void* stream)
{
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
    case BA_FLOAT16: return (int)launch_typed<__half>(p, s);
    case BA_FLOAT32: return (int)launch_typed<float>(p, s);
    case BA_FLOAT64: return (int)launch_typed<double>(p, s);
    default:         return (int)cudaErrorInvalidValue;
    }
}

//------------------------------------------------------------------------
