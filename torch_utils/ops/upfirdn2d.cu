// CUDA kernels of upfirdn2d: a shared-memory tiled kernel for planar (NCHW-like) outputs of
// reasonable size, and a generic one-thread-per-output kernel for everything else (channels_last,
// tiny planes, filters too large for shared memory). The math lives in upfirdn2d.h.
// Needs only the CUDA runtime (no torch headers).

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include "upfirdn2d.h"

//------------------------------------------------------------------------

static const int kThreads = 256;
static const int kMaxTile = 32;
static const int kSmemLimit = 48 * 1024;      // available to every block without an opt-in
static const int kMinTiledOutputs = 256;      // smaller planes leave most threads of a tile idle

extern __shared__ __align__(16) unsigned char uf_shared[];

//------------------------------------------------------------------------

template <typename T>
__global__ void upfirdn2d_generic_kernel(Upfirdn2dParams p, int total)
{
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx < total)
        upfirdn2d_generic_element<T>(p, idx);
}

template <typename T>
__global__ void upfirdn2d_tiled_kernel(Upfirdn2dParams p, Upfirdn2dTiling t)
{
    upfirdn2d_tile_load<T>(p, t, blockIdx.x, threadIdx.x, blockDim.x, uf_shared);
    __syncthreads();
    upfirdn2d_tile_compute<T>(p, t, blockIdx.x, threadIdx.x, blockDim.x, uf_shared);
}

//------------------------------------------------------------------------

template <typename T>
static cudaError_t launch_typed(const Upfirdn2dParams& p, cudaStream_t stream)
{
    typedef typename UfCompute<T>::type C;
    long long planes = (long long)p.batch * p.channels;
    long long total = planes * p.out_h * p.out_w;
    if (total == 0)
        return cudaSuccess;

    // Tiled kernel when the output is planar and each plane fills at least one block.
    if (!p.channel_fastest && (long long)p.out_h * p.out_w >= kMinTiledOutputs) {
        Upfirdn2dTiling t = upfirdn2d_plan_tiling(p, (int)sizeof(C), kSmemLimit, kMaxTile);
        if (t.tile_h > 0) {
            long long blocks = planes * t.tiles_y * t.tiles_x;
            upfirdn2d_tiled_kernel<T><<<(unsigned int)blocks, kThreads, t.smem_bytes, stream>>>(p, t);
            return cudaGetLastError();
        }
    }

    long long blocks = (total + kThreads - 1) / kThreads;
    upfirdn2d_generic_kernel<T><<<(unsigned int)blocks, kThreads, 0, stream>>>(p, (int)total);
    return cudaGetLastError();
}

int upfirdn2d_launch(const Upfirdn2dParams& p, int dtype, void* stream)
{
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
    case UF_FLOAT16: return (int)launch_typed<__half>(p, s);
    case UF_FLOAT32: return (int)launch_typed<float>(p, s);
    case UF_FLOAT64: return (int)launch_typed<double>(p, s);
    default:         return (int)cudaErrorInvalidValue;
    }
}

//------------------------------------------------------------------------
