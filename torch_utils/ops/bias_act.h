// Fused bias + activation + gain + clamp: parameters and per-element math shared by the CUDA
// kernel (bias_act.cu) and by host-side emulation in the tests. Plain C++/CUDA, no torch headers.

#pragma once

#include <math.h>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define BA_HD __host__ __device__ __forceinline__
#else
#define BA_HD inline
#endif

//------------------------------------------------------------------------
// Codes shared with bias_act.py (activation_funcs[...].cuda_idx) and bias_act.cpp.

enum BiasActCode {
    BA_LINEAR = 1, BA_RELU = 2, BA_LRELU = 3, BA_TANH = 4, BA_SIGMOID = 5,
    BA_ELU = 6, BA_SELU = 7, BA_SOFTPLUS = 8, BA_SWISH = 9,
};
enum BiasActDtype { BA_FLOAT16 = 0, BA_FLOAT32 = 1, BA_FLOAT64 = 2 };

//------------------------------------------------------------------------
// One call of the kernel. All element tensors share the layout of x; an absent tensor is NULL.
//   grad 0: out = clamp(act(x + b) * gain)
//   grad 1: out = dL/dx for incoming gradient x, from xref (pre-bias input) or yref (output)
//   grad 2: out = second-order term: x times d(dL/dx)/dx, with dy the first-order incoming gradient

struct BiasActParams {
    void*       out;        // same layout as x
    const void* x;
    const void* dy;         // same layout as x, or NULL (grad 2 only)
    const void* xref;       // same layout as x, or NULL
    const void* yref;       // same layout as x, or NULL
    const void* b;          // [bias_len] or NULL
    int         numel;
    int         grad;       // 0, 1 or 2
    int         act;        // BiasActCode
    int         bias_len;   // 0 when there is no bias
    int         bias_step;  // memory stride of the bias dimension in x
    double      alpha;
    double      gain;
    double      clamp;      // < 0 disables clamping
};

//------------------------------------------------------------------------
// Storage <-> compute type. Half is computed in float; the CUDA-only specialisation uses the
// explicit intrinsics because torch builds with __CUDA_NO_HALF_CONVERSIONS__.

template <typename T> struct BaCompute { typedef T type; };
template <typename T> BA_HD typename BaCompute<T>::type ba_load(const void* ptr, int i)
{
    return static_cast<const T*>(ptr)[i];
}
template <typename T> BA_HD void ba_store(void* ptr, int i, typename BaCompute<T>::type v)
{
    static_cast<T*>(ptr)[i] = v;
}

#if defined(__CUDACC__)
template <> struct BaCompute<__half> { typedef float type; };
template <> BA_HD float ba_load<__half>(const void* ptr, int i)
{
    return __half2float(static_cast<const __half*>(ptr)[i]);
}
template <> BA_HD void ba_store<__half>(void* ptr, int i, float v)
{
    static_cast<__half*>(ptr)[i] = __float2half_rn(v);
}
#endif

//------------------------------------------------------------------------
// Scalar math overloads for float and double.

BA_HD float  ba_exp(float v)    { return expf(v); }
BA_HD double ba_exp(double v)   { return exp(v); }
BA_HD float  ba_expm1(float v)  { return expm1f(v); }
BA_HD double ba_expm1(double v) { return expm1(v); }
BA_HD float  ba_log1p(float v)  { return log1pf(v); }
BA_HD double ba_log1p(double v) { return log1p(v); }
BA_HD float  ba_tanh(float v)   { return tanhf(v); }
BA_HD double ba_tanh(double v)  { return tanh(v); }
BA_HD float  ba_abs(float v)    { return fabsf(v); }
BA_HD double ba_abs(double v)   { return fabs(v); }

// Logistic function that neither overflows nor produces NaN for large |v|.
template <typename C> BA_HD C ba_sigmoid(C v)
{
    if (v >= 0)
        return C(1) / (C(1) + ba_exp(-v));
    C e = ba_exp(v);
    return e / (C(1) + e);
}

//------------------------------------------------------------------------
// The activations and their first and second derivatives with respect to the input s.
// softplus follows torch: beyond s > 20 it is the identity.

#define BA_SELU_SCALE 1.0507009873554804934193349852946
#define BA_SELU_ALPHA 1.6732632423543772848170429916717
#define BA_SOFTPLUS_THRESHOLD 20

template <typename C> BA_HD C ba_activation(int act, C s, C alpha)
{
    switch (act) {
    case BA_RELU:     return s > 0 ? s : C(0);
    case BA_LRELU:    return s > 0 ? s : s * alpha;
    case BA_TANH:     return ba_tanh(s);
    case BA_SIGMOID:  return ba_sigmoid(s);
    case BA_ELU:      return s > 0 ? s : ba_expm1(s);
    case BA_SELU:     return s > 0 ? C(BA_SELU_SCALE) * s : C(BA_SELU_SCALE * BA_SELU_ALPHA) * ba_expm1(s);
    case BA_SOFTPLUS: return s > C(BA_SOFTPLUS_THRESHOLD) ? s : ba_log1p(ba_exp(s));
    case BA_SWISH:    return s * ba_sigmoid(s);
    default:          return s;
    }
}

// a = ba_activation(act, s, alpha), passed in to avoid recomputing it.
template <typename C> BA_HD C ba_derivative(int act, C s, C a, C alpha)
{
    switch (act) {
    case BA_RELU:     return s > 0 ? C(1) : C(0);
    case BA_LRELU:    return s > 0 ? C(1) : alpha;
    case BA_TANH:     return C(1) - a * a;
    case BA_SIGMOID:  return a * (C(1) - a);
    case BA_ELU:      return s > 0 ? C(1) : a + C(1);
    case BA_SELU:     return s > 0 ? C(BA_SELU_SCALE) : a + C(BA_SELU_SCALE * BA_SELU_ALPHA);
    case BA_SOFTPLUS: return s > C(BA_SOFTPLUS_THRESHOLD) ? C(1) : ba_sigmoid(s);
    case BA_SWISH:    { C g = ba_sigmoid(s); return g + s * g * (C(1) - g); }
    default:          return C(1);
    }
}

template <typename C> BA_HD C ba_second_derivative(int act, C s, C a)
{
    switch (act) {
    case BA_TANH:     return C(-2) * a * (C(1) - a * a);
    case BA_SIGMOID:  return a * (C(1) - a) * (C(1) - C(2) * a);
    case BA_ELU:      return s > 0 ? C(0) : a + C(1);
    case BA_SELU:     return s > 0 ? C(0) : a + C(BA_SELU_SCALE * BA_SELU_ALPHA);
    case BA_SOFTPLUS: { if (s > C(BA_SOFTPLUS_THRESHOLD)) return C(0); C g = ba_sigmoid(s); return g * (C(1) - g); }
    case BA_SWISH:    { C g = ba_sigmoid(s); return g * (C(1) - g) * (C(2) + s * (C(1) - C(2) * g)); }
    default:          return C(0);  // piecewise linear activations
    }
}

//------------------------------------------------------------------------
// Compute element i (memory order) of the output.

template <typename T> BA_HD void bias_act_element(const BiasActParams& p, int i)
{
    typedef typename BaCompute<T>::type C;
    const C alpha = C(p.alpha);
    const C gain = C(p.gain);
    const C clamp = C(p.clamp);
    const bool clamping = p.clamp >= 0;
    const C bias = (p.bias_len > 0) ? ba_load<T>(p.b, (i / p.bias_step) % p.bias_len) : C(0);
    const C v = ba_load<T>(p.x, i);

    // Forward: bias, activation, gain, clamp.
    if (p.grad == 0) {
        C y = ba_activation(p.act, v + bias, alpha) * gain;
        if (clamping)
            y = (y > clamp) ? clamp : (y < -clamp) ? -clamp : y;
        ba_store<T>(p.out, i, y);
        return;
    }

    // Recover the pre-activation s and activation a, and whether the clamp let the value through.
    // From xref the clamp mask is inclusive (like torch.clamp's gradient); from a clamped yref a value
    // exactly at the bound is treated as clipped. yref is only used for relu, lrelu (alpha >= 0) and
    // linear, whose derivatives depend on the sign of s alone, which a = y / gain has too.
    C s = C(0);
    C a = C(0);
    bool inside = true;
    if (p.xref) {
        s = ba_load<T>(p.xref, i) + bias;
        a = ba_activation(p.act, s, alpha);
        if (clamping) {
            C y = a * gain;
            inside = (y >= -clamp && y <= clamp);
        }
    } else if (p.yref) {
        C y = ba_load<T>(p.yref, i);
        a = (p.gain != 0) ? y / gain : C(0);
        s = a;
        if (clamping)
            inside = ba_abs(y) < clamp;
    }

    C out = C(0);
    if (inside) {
        if (p.grad == 1)
            out = v * gain * ba_derivative(p.act, s, a, alpha);
        else
            out = v * ba_load<T>(p.dy, i) * gain * ba_second_derivative(p.act, s, a);
    }
    ba_store<T>(p.out, i, out);
}

//------------------------------------------------------------------------
// Launch on a CUDA stream (cudaStream_t passed as void*); returns a cudaError_t value (0 = success).

int bias_act_launch(const BiasActParams& p, int dtype, void* stream);

//------------------------------------------------------------------------
