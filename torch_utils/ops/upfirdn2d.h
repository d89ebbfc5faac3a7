// Upsample, pad, FIR-filter and downsample a batch of 2-D images: parameters and the per-output
// math shared by the CUDA kernels (upfirdn2d.cu) and by host-side emulation in the tests.
// Plain C++/CUDA, no torch headers.
//
// Definition (per image plane): insert up-1 zeros after every input pixel, pad with padx0/pady0
// zeros on the left/top (negative = crop), slide the fh x fw filter over the result ("valid"
// positions only) and keep every down-th position. flip = 0 is a true convolution (filter
// reversed in both axes), flip = 1 a correlation. Instead of building the upsampled image, every
// output gathers only the input pixels that land on a filter tap.

#pragma once

#include <stddef.h>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define UF_HD __host__ __device__ __forceinline__
#else
#define UF_HD inline
#endif

//------------------------------------------------------------------------

enum Upfirdn2dDtype { UF_FLOAT16 = 0, UF_FLOAT32 = 1, UF_FLOAT64 = 2 };

struct Upfirdn2dParams {
    const void*  x;             // [batch, channels, in_h, in_w], any strides
    const float* f;             // [fh, fw], contiguous
    void*        y;             // [batch, channels, out_h, out_w], any strides
    int          batch, channels;
    int          in_h, in_w;
    int          out_h, out_w;
    int          x_stride[4];   // element strides of x: n, c, h, w
    int          y_stride[4];   // element strides of y: n, c, h, w
    int          fh, fw;
    int          upx, upy;
    int          downx, downy;
    int          padx0, pady0;  // the right/bottom padding only shows up in out_w/out_h
    int          flip;          // 1 = correlation, 0 = convolution
    double       gain;
    int          channel_fastest; // generic kernel: consecutive threads walk channels (channels_last)
};

// Output tile handled by one thread block of the tiled kernel; tile_h == 0 means "does not fit".
struct Upfirdn2dTiling {
    int tile_h, tile_w;         // outputs per block
    int tiles_y, tiles_x;       // blocks per image plane
    int in_h, in_w;             // input pixels held in shared memory
    int smem_bytes;             // input tile (compute type) followed by the filter (float)
};

//------------------------------------------------------------------------
// Storage <-> compute type; half is computed in float (explicit intrinsics, see bias_act.h).

template <typename T> struct UfCompute { typedef T type; };
template <typename T> UF_HD typename UfCompute<T>::type uf_load(const void* ptr, ptrdiff_t i)
{
    return static_cast<const T*>(ptr)[i];
}
template <typename T> UF_HD void uf_store(void* ptr, ptrdiff_t i, typename UfCompute<T>::type v)
{
    static_cast<T*>(ptr)[i] = v;
}

#if defined(__CUDACC__)
template <> struct UfCompute<__half> { typedef float type; };
template <> UF_HD float uf_load<__half>(const void* ptr, ptrdiff_t i)
{
    return __half2float(static_cast<const __half*>(ptr)[i]);
}
template <> UF_HD void uf_store<__half>(void* ptr, ptrdiff_t i, float v)
{
    static_cast<__half*>(ptr)[i] = __float2half_rn(v);
}
#endif

//------------------------------------------------------------------------
// Integer division rounding down / up, for b > 0 and any sign of a.

UF_HD int uf_floor_div(int a, int b)
{
    int q = a / b;
    return (q * b > a) ? q - 1 : q;
}
UF_HD int uf_ceil_div(int a, int b)
{
    return -uf_floor_div(-a, b);
}
UF_HD int uf_max(int a, int b) { return a > b ? a : b; }
UF_HD int uf_min(int a, int b) { return a < b ? a : b; }

// Filter weight applied to window offset (ky, kx), counted from the window's top-left corner.
UF_HD float uf_tap(const Upfirdn2dParams& p, int ky, int kx)
{
    return p.flip ? p.f[ky * p.fw + kx] : p.f[(p.fh - 1 - ky) * p.fw + (p.fw - 1 - kx)];
}

UF_HD ptrdiff_t uf_offset(const int* stride, int n, int c, int h, int w)
{
    return (ptrdiff_t)n * stride[0] + (ptrdiff_t)c * stride[1] + (ptrdiff_t)h * stride[2] + (ptrdiff_t)w * stride[3];
}

//------------------------------------------------------------------------
// Generic kernel body: output element idx (0 <= idx < batch*channels*out_h*out_w), read directly
// from global memory. Output (oy, ox) sees the upsampled, padded pixels starting at
// w = o*down - pad0; input pixel i lands at offset k = i*up - w inside that window.

template <typename T> UF_HD void upfirdn2d_generic_element(const Upfirdn2dParams& p, int idx)
{
    typedef typename UfCompute<T>::type C;
    int n, c, oy, ox;
    if (p.channel_fastest) {
        c = idx % p.channels; idx /= p.channels;
        ox = idx % p.out_w;   idx /= p.out_w;
        oy = idx % p.out_h;   n = idx / p.out_h;
    } else {
        ox = idx % p.out_w;   idx /= p.out_w;
        oy = idx % p.out_h;   idx /= p.out_h;
        c = idx % p.channels; n = idx / p.channels;
    }

    // Input rows/columns whose taps fall inside the window, clipped to the image.
    int wy = oy * p.downy - p.pady0;
    int wx = ox * p.downx - p.padx0;
    int iy0 = uf_max(uf_ceil_div(wy, p.upy), 0);
    int iy1 = uf_min(uf_floor_div(wy + p.fh - 1, p.upy), p.in_h - 1);
    int ix0 = uf_max(uf_ceil_div(wx, p.upx), 0);
    int ix1 = uf_min(uf_floor_div(wx + p.fw - 1, p.upx), p.in_w - 1);

    const ptrdiff_t plane = uf_offset(p.x_stride, n, c, 0, 0);
    C acc = C(0);
    for (int iy = iy0; iy <= iy1; iy++) {
        int ky = iy * p.upy - wy;
        for (int ix = ix0; ix <= ix1; ix++) {
            int kx = ix * p.upx - wx;
            C v = uf_load<T>(p.x, plane + (ptrdiff_t)iy * p.x_stride[2] + (ptrdiff_t)ix * p.x_stride[3]);
            acc += v * C(uf_tap(p, ky, kx));
        }
    }
    uf_store<T>(p.y, uf_offset(p.y_stride, n, c, oy, ox), acc * C(p.gain));
}

//------------------------------------------------------------------------
// Pick the largest output tile (at most max_tile x max_tile, halving down to 4 x 4) whose input
// footprint and filter fit into smem_limit bytes. For rows, a tile of th outputs reads at most
// ((th-1)*down + fh - 1) / up + 1 input rows; columns alike.

inline Upfirdn2dTiling upfirdn2d_plan_tiling(const Upfirdn2dParams& p, int compute_bytes, int smem_limit, int max_tile)
{
    Upfirdn2dTiling t = {0, 0, 0, 0, 0, 0, 0};
    for (int size = max_tile; size >= 4; size /= 2) {
        int th = uf_min(size, p.out_h);
        int tw = uf_min(size, p.out_w);
        int in_h = ((th - 1) * p.downy + p.fh - 1) / p.upy + 1;
        int in_w = ((tw - 1) * p.downx + p.fw - 1) / p.upx + 1;
        long long bytes = (long long)in_h * in_w * compute_bytes + (long long)p.fh * p.fw * (long long)sizeof(float);
        if (bytes <= smem_limit) {
            t.tile_h = th;
            t.tile_w = tw;
            t.tiles_y = (p.out_h + th - 1) / th;
            t.tiles_x = (p.out_w + tw - 1) / tw;
            t.in_h = in_h;
            t.in_w = in_w;
            t.smem_bytes = (int)bytes;
            return t;
        }
    }
    return t;
}

//------------------------------------------------------------------------
// Tiled kernel, part 1 of 2: the threads of a block copy the input footprint of their output tile
// (zeros outside the image) and the filter, pre-flipped into window order, to shared memory.
// Block b covers plane b / (tiles_y*tiles_x) and tile b % (tiles_y*tiles_x) of that plane.

struct UfTile { int n, c, oy0, ox0, iy_lo, ix_lo; };

UF_HD UfTile uf_tile_origin(const Upfirdn2dParams& p, const Upfirdn2dTiling& t, int block)
{
    UfTile o;
    int per_plane = t.tiles_y * t.tiles_x;
    int plane = block / per_plane;
    int r = block % per_plane;
    o.n = plane / p.channels;
    o.c = plane % p.channels;
    o.oy0 = (r / t.tiles_x) * t.tile_h;
    o.ox0 = (r % t.tiles_x) * t.tile_w;
    o.iy_lo = uf_ceil_div(o.oy0 * p.downy - p.pady0, p.upy);
    o.ix_lo = uf_ceil_div(o.ox0 * p.downx - p.padx0, p.upx);
    return o;
}

template <typename T> UF_HD void upfirdn2d_tile_load(const Upfirdn2dParams& p, const Upfirdn2dTiling& t,
                                                    int block, int tid, int nthreads, void* smem)
{
    typedef typename UfCompute<T>::type C;
    C* sx = static_cast<C*>(smem);
    float* sf = reinterpret_cast<float*>(sx + t.in_h * t.in_w);
    UfTile o = uf_tile_origin(p, t, block);

    const ptrdiff_t plane = uf_offset(p.x_stride, o.n, o.c, 0, 0);
    for (int k = tid; k < t.in_h * t.in_w; k += nthreads) {
        int iy = o.iy_lo + k / t.in_w;
        int ix = o.ix_lo + k % t.in_w;
        bool inside = (iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w);
        sx[k] = inside ? uf_load<T>(p.x, plane + (ptrdiff_t)iy * p.x_stride[2] + (ptrdiff_t)ix * p.x_stride[3]) : C(0);
    }
    for (int k = tid; k < p.fh * p.fw; k += nthreads)
        sf[k] = uf_tap(p, k / p.fw, k % p.fw);
}

//------------------------------------------------------------------------
// Tiled kernel, part 2 of 2 (after a barrier): each thread computes outputs of the tile from shared
// memory. Zeros are stored around the image, so only the up-phase of the taps needs working out.

template <typename T> UF_HD void upfirdn2d_tile_compute(const Upfirdn2dParams& p, const Upfirdn2dTiling& t,
                                                       int block, int tid, int nthreads, const void* smem)
{
    typedef typename UfCompute<T>::type C;
    const C* sx = static_cast<const C*>(smem);
    const float* sf = reinterpret_cast<const float*>(sx + t.in_h * t.in_w);
    UfTile o = uf_tile_origin(p, t, block);

    for (int k = tid; k < t.tile_h * t.tile_w; k += nthreads) {
        int oy = o.oy0 + k / t.tile_w;
        int ox = o.ox0 + k % t.tile_w;
        if (oy >= p.out_h || ox >= p.out_w)
            continue;

        // First input row/column on a tap, and that tap's offset in the window.
        int wy = oy * p.downy - p.pady0;
        int wx = ox * p.downx - p.padx0;
        int ry = uf_ceil_div(wy, p.upy);
        int rx = uf_ceil_div(wx, p.upx);
        int ky0 = ry * p.upy - wy;
        int kx0 = rx * p.upx - wx;
        ry -= o.iy_lo;
        rx -= o.ix_lo;

        C acc = C(0);
        for (int ky = ky0, sy = ry; ky < p.fh; ky += p.upy, sy++) {
            const C* row = sx + sy * t.in_w;
            for (int kx = kx0, sxx = rx; kx < p.fw; kx += p.upx, sxx++)
                acc += row[sxx] * C(sf[ky * p.fw + kx]);
        }
        uf_store<T>(p.y, uf_offset(p.y_stride, o.n, o.c, oy, ox), acc * C(p.gain));
    }
}

//------------------------------------------------------------------------
// Launch on a CUDA stream (cudaStream_t passed as void*); returns a cudaError_t value (0 = success).

int upfirdn2d_launch(const Upfirdn2dParams& p, int dtype, void* stream);

//------------------------------------------------------------------------
