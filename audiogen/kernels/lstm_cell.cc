// LstmCellForward / LstmCellBackward: the element-wise part of one LSTM step, fused.
//
// In a TensorFlow graph an LSTM step is ~20 small operations (bias add, split, three sigmoids,
// two tanh, products and sums, one write per saved activation), each a kernel launch and a pass
// over memory; its backward step as many again. LstmCell* do each in one pass, leaving the
// recurrent matrix product to TensorFlow. Keras gate order: i, f, g (cell input), o.
//
// Layout (attr gate_axis): the preactivation z = x + r has shape [4 H, B] with gate_axis 0
// (gates are row blocks: the "feature-major" loop) or [B, 4 H] with gate_axis 1 (gates are column
// blocks); the state c has shape [H, B] or [B, H]. Either way z is viewed as [A, 4, C] and c as
// [A, C] (A = 1, C = H B, or A = B, C = H).
//
// T is the dtype of the recurrent products: with bfloat16, r and dh_rec arrive as bfloat16 (a
// bfloat16 matmul's result) and the ops also return h and dz rounded to bfloat16 (nearest even,
// as a cast does), which is what the next product reads.
//
// With AVX-512 (and its bfloat16 conversions) the element-wise maths runs 16 lanes at a time:
// exp by range reduction and a degree-7 polynomial, sigmoid(x) = 1 / (1 + exp(-x)) with a refined
// reciprocal, tanh(x) = 2 sigmoid(2 x) - 1 (absolute error ~1e-7, against TensorFlow's own
// kernels). Otherwise plain loops over std::exp and std::tanh.
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) && defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>
#define AUDIOGEN_AVX512 1
#endif

#include "vector_math.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

using namespace tensorflow;

namespace {

// z [4H, B] or [B, 4H] -> (A, C) of the [A, 4, C] view.
Status gate_view(const TensorShape& z, int gate_axis, int64_t* a, int64_t* c) {
  if (z.dims() != 2 || (gate_axis != 0 && gate_axis != 1) || z.dim_size(gate_axis) % 4 != 0)
    return errors::InvalidArgument("LstmCell: z must be [4 H, B] (gate_axis 0) or [B, 4 H] "
                                   "(gate_axis 1), got ", z.DebugString(), " with gate_axis ",
                                   gate_axis);
  *a = gate_axis == 0 ? 1 : z.dim_size(0);
  *c = z.num_elements() / (4 * *a);
  return OkStatus();
}

TensorShape state_shape(const TensorShape& z, int gate_axis) {
  TensorShape s = z;
  s.set_dim(gate_axis, z.dim_size(gate_axis) / 4);
  return s;
}

Status check_same(const char* what, const TensorShape& got, const TensorShape& want) {
  if (got == want) return OkStatus();
  return errors::InvalidArgument("LstmCell: ", what, " must have shape ", want.DebugString(),
                                 ", got ", got.DebugString());
}

Status state_shape_fn(shape_inference::InferenceContext* c, int z_input,
                      shape_inference::ShapeHandle* out) {
  shape_inference::ShapeHandle z;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(z_input), 2, &z));
  int gate_axis;
  TF_RETURN_IF_ERROR(c->GetAttr("gate_axis", &gate_axis));
  shape_inference::DimensionHandle units;
  TF_RETURN_IF_ERROR(c->Divide(c->Dim(z, gate_axis), 4, /*evenly_divisible=*/true, &units));
  return c->ReplaceDim(z, gate_axis, units, out);
}

// --- the cell's maths over one run of `len` hidden units -----------------------------------------
//
// Forward: gate pointers x[g], r[g] (g = i, f, g, o); c the incoming state. Writes h, h_low (h in
// T), c_out and saved[0..5] = i, f, g, o, tanh(c_out), c.
// Backward: saved as above; dh = d_out + dh_rec, dc the gradients of h and c_out. Writes dz[g]
// (and dz_low[g] in T unless null) and dc_prev.

#ifdef AUDIOGEN_AVX512
using vector_math::exp16;

inline __m512 sigmoid16(__m512 x) {
  const __m512 d =
      _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), x)));
  const __m512 y = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0f)));  // one Newton step
}

inline __m512 tanh16(__m512 x) {
  return _mm512_fmsub_ps(_mm512_set1_ps(2.0f), sigmoid16(_mm512_add_ps(x, x)),
                         _mm512_set1_ps(1.0f));
}

inline __mmask16 lanes(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

inline __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load(const bfloat16* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(
      _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const void*>(p))), 16));
}
inline void store(float* p, __m512 v, __mmask16 m) { _mm512_mask_storeu_ps(p, m, v); }
inline void store(bfloat16* p, __m512 v, __mmask16 m) {
  _mm256_mask_storeu_epi16(reinterpret_cast<void*>(p), m, (__m256i)_mm512_cvtneps_pbh(v));
}

template <typename R, typename T>
void cell_forward(const float* const x[4], const R* const r[4], const float* c, int64_t len,
                  float* h, T* h_low, float* c_out, float* const saved[6]) {
  for (int64_t e = 0; e < len; e += 16) {
    const __mmask16 m = lanes(len - e);
    auto z = [&](int g) { return _mm512_add_ps(load(x[g] + e, m), load(r[g] + e, m)); };
    const __m512 i = sigmoid16(z(0)), f = sigmoid16(z(1)), g = tanh16(z(2)), o = sigmoid16(z(3));
    const __m512 c_in = load(c + e, m);
    const __m512 c_new = _mm512_fmadd_ps(f, c_in, _mm512_mul_ps(i, g));
    const __m512 tanh_c = tanh16(c_new);
    const __m512 hv = _mm512_mul_ps(o, tanh_c);
    store(h + e, hv, m);
    if (h_low != nullptr) store(h_low + e, hv, m);
    store(c_out + e, c_new, m);
    const __m512 keep[6] = {i, f, g, o, tanh_c, c_in};
    for (int k = 0; k < 6; ++k) store(saved[k] + e, keep[k], m);
  }
}

template <typename D, typename T>
void cell_backward(const float* const saved[6], const float* d_out, const D* dh_rec,
                   const float* dc, int64_t len, float* const dz[4], T* const dz_low[4],
                   float* dc_prev) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t e = 0; e < len; e += 16) {
    const __mmask16 m = lanes(len - e);
    const __m512 i = load(saved[0] + e, m), f = load(saved[1] + e, m), g = load(saved[2] + e, m),
                 o = load(saved[3] + e, m), tc = load(saved[4] + e, m),
                 cp = load(saved[5] + e, m);
    const __m512 dh = _mm512_add_ps(load(d_out + e, m), load(dh_rec + e, m));
    // dc + dh o (1 - tanh_c^2)
    const __m512 dct = _mm512_fmadd_ps(_mm512_mul_ps(dh, o), _mm512_fnmadd_ps(tc, tc, one),
                                       load(dc + e, m));
    const __m512 grads[4] = {
        _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dct, g), i), _mm512_sub_ps(one, i)),
        _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dct, cp), f), _mm512_sub_ps(one, f)),
        _mm512_mul_ps(_mm512_mul_ps(dct, i), _mm512_fnmadd_ps(g, g, one)),
        _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dh, tc), o), _mm512_sub_ps(one, o))};
    for (int q = 0; q < 4; ++q) {
      store(dz[q] + e, grads[q], m);
      if (dz_low[q] != nullptr) store(dz_low[q] + e, grads[q], m);
    }
    store(dc_prev + e, _mm512_mul_ps(dct, f), m);
  }
}
#else
inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

template <typename R, typename T>
void cell_forward(const float* const x[4], const R* const r[4], const float* c, int64_t len,
                  float* h, T* h_low, float* c_out, float* const saved[6]) {
  for (int64_t e = 0; e < len; ++e) {
    auto z = [&](int g) { return x[g][e] + static_cast<float>(r[g][e]); };
    const float i = sigmoid(z(0)), f = sigmoid(z(1)), g = std::tanh(z(2)), o = sigmoid(z(3));
    const float c_new = f * c[e] + i * g, tanh_c = std::tanh(c_new), hv = o * tanh_c;
    h[e] = hv;
    if (h_low != nullptr) h_low[e] = static_cast<T>(hv);
    c_out[e] = c_new;
    const float keep[6] = {i, f, g, o, tanh_c, c[e]};
    for (int k = 0; k < 6; ++k) saved[k][e] = keep[k];
  }
}

template <typename D, typename T>
void cell_backward(const float* const saved[6], const float* d_out, const D* dh_rec,
                   const float* dc, int64_t len, float* const dz[4], T* const dz_low[4],
                   float* dc_prev) {
  for (int64_t e = 0; e < len; ++e) {
    const float i = saved[0][e], f = saved[1][e], g = saved[2][e], o = saved[3][e],
                tc = saved[4][e], cp = saved[5][e];
    const float dh = d_out[e] + static_cast<float>(dh_rec[e]);
    const float dct = dc[e] + dh * o * (1.0f - tc * tc);
    const float grads[4] = {dct * g * i * (1.0f - i), dct * cp * f * (1.0f - f),
                            dct * i * (1.0f - g * g), dh * tc * o * (1.0f - o)};
    for (int q = 0; q < 4; ++q) {
      dz[q][e] = grads[q];
      if (dz_low[q] != nullptr) dz_low[q][e] = static_cast<T>(grads[q]);
    }
    dc_prev[e] = dct * f;
  }
}
#endif

}  // namespace

REGISTER_OP("LstmCellForward")
    .Input("x: float")
    .Input("r: T")
    .Input("c: float")
    .Output("h: float")
    .Output("h_low: T")
    .Output("c_out: float")
    .Output("saved: float")
    .Attr("T: {float, bfloat16}")
    .Attr("gate_axis: int")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      shape_inference::ShapeHandle state, saved;
      TF_RETURN_IF_ERROR(state_shape_fn(c, 0, &state));
      TF_RETURN_IF_ERROR(c->Concatenate(c->Vector(6), state, &saved));
      c->set_output(0, state);
      c->set_output(1, state);
      c->set_output(2, state);
      c->set_output(3, saved);
      return OkStatus();
    })
    .Doc("z = x + r; i, f, o = sigmoid, g = tanh of its gate blocks; c_out = f c + i g; "
         "h = o tanh(c_out). saved [6, ...] = i, f, g, o, tanh(c_out), c for the backward step.");

REGISTER_OP("LstmCellBackward")
    .Input("saved: float")
    .Input("d_out: float")
    .Input("dh_rec: T")
    .Input("dc: float")
    .Output("dz: float")
    .Output("dz_low: T")
    .Output("dc_prev: float")
    .Attr("T: {float, bfloat16}")
    .Attr("gate_axis: int")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      shape_inference::ShapeHandle state, z;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &state));
      int gate_axis;
      TF_RETURN_IF_ERROR(c->GetAttr("gate_axis", &gate_axis));
      shape_inference::DimensionHandle gates;
      TF_RETURN_IF_ERROR(c->Multiply(c->Dim(state, gate_axis), 4, &gates));
      TF_RETURN_IF_ERROR(c->ReplaceDim(state, gate_axis, gates, &z));
      c->set_output(0, z);
      c->set_output(1, z);
      c->set_output(2, state);
      return OkStatus();
    })
    .Doc("The gradient of LstmCellForward: dh = d_out + dh_rec; returns dz (the gradient of "
         "z = x + r) and dc_prev (of the incoming c), given dh and dc of the step's outputs.");

template <typename T>
class LstmCellForwardOp : public OpKernel {
 public:
  explicit LstmCellForwardOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("gate_axis", &gate_axis_));
    OP_REQUIRES(c, gate_axis_ == 0 || gate_axis_ == 1,
                errors::InvalidArgument("LstmCell: gate_axis must be 0 or 1, got ", gate_axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor &x = ctx->input(0), &r = ctx->input(1), &c = ctx->input(2);
    int64_t A, C;
    OP_REQUIRES_OK(ctx, gate_view(x.shape(), gate_axis_, &A, &C));
    const TensorShape state = state_shape(x.shape(), gate_axis_);
    OP_REQUIRES_OK(ctx, check_same("r", r.shape(), x.shape()));
    OP_REQUIRES_OK(ctx, check_same("c", c.shape(), state));
    TensorShape saved_shape = state;
    saved_shape.InsertDim(0, 6);
    Tensor *h, *h_low = nullptr, *c_out, *saved;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, state, &h));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, state, &c_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, saved_shape, &saved));
    if constexpr (std::is_same_v<T, float>) {
      ctx->set_output(1, *h);
    } else {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1, state, &h_low));
    }
    const int64_t n = A * C;
    const float* xp = x.flat<float>().data();
    const T* rp = r.flat<T>().data();
    for (int64_t a = 0; a < A; ++a) {
      const int64_t at = a * C;
      const float* xs[4];
      const T* rs[4];
      float* keep[6];
      for (int g = 0; g < 4; ++g) {
        xs[g] = xp + (4 * a + g) * C;
        rs[g] = rp + (4 * a + g) * C;
      }
      for (int k = 0; k < 6; ++k) keep[k] = saved->flat<float>().data() + k * n + at;
      cell_forward(xs, rs, c.flat<float>().data() + at, C, h->flat<float>().data() + at,
                   h_low ? h_low->flat<T>().data() + at : nullptr,
                   c_out->flat<float>().data() + at, keep);
    }
  }

 private:
  int gate_axis_;
};

template <typename T>
class LstmCellBackwardOp : public OpKernel {
 public:
  explicit LstmCellBackwardOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("gate_axis", &gate_axis_));
    OP_REQUIRES(c, gate_axis_ == 0 || gate_axis_ == 1,
                errors::InvalidArgument("LstmCell: gate_axis must be 0 or 1, got ", gate_axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor &saved = ctx->input(0), &d_out = ctx->input(1), &dh_rec = ctx->input(2),
                 &dc = ctx->input(3);
    const TensorShape state = d_out.shape();
    OP_REQUIRES(ctx, state.dims() == 2,
                errors::InvalidArgument("LstmCellBackward: d_out must be 2-D, got ",
                                        state.DebugString()));
    TensorShape z_shape = state, saved_shape = state;
    z_shape.set_dim(gate_axis_, 4 * state.dim_size(gate_axis_));
    saved_shape.InsertDim(0, 6);
    int64_t A, C;
    OP_REQUIRES_OK(ctx, gate_view(z_shape, gate_axis_, &A, &C));
    OP_REQUIRES_OK(ctx, check_same("saved", saved.shape(), saved_shape));
    OP_REQUIRES_OK(ctx, check_same("dh_rec", dh_rec.shape(), state));
    OP_REQUIRES_OK(ctx, check_same("dc", dc.shape(), state));
    Tensor *dz, *dz_low = nullptr, *dc_prev;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, z_shape, &dz));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, state, &dc_prev));
    if constexpr (std::is_same_v<T, float>) {
      ctx->set_output(1, *dz);
    } else {
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1, z_shape, &dz_low));
    }
    const int64_t n = A * C;
    for (int64_t a = 0; a < A; ++a) {
      const int64_t at = a * C;
      const float* keep[6];
      float* grads[4];
      T* grads_low[4];
      for (int k = 0; k < 6; ++k) keep[k] = saved.flat<float>().data() + k * n + at;
      for (int g = 0; g < 4; ++g) {
        grads[g] = dz->flat<float>().data() + (4 * a + g) * C;
        grads_low[g] = dz_low ? dz_low->flat<T>().data() + (4 * a + g) * C : nullptr;
      }
      cell_backward(keep, d_out.flat<float>().data() + at, dh_rec.flat<T>().data() + at,
                    dc.flat<float>().data() + at, C, grads, grads_low,
                    dc_prev->flat<float>().data() + at);
    }
  }

 private:
  int gate_axis_;
};

#define AUDIOGEN_REGISTER(T)                                                                 \
  REGISTER_KERNEL_BUILDER(Name("LstmCellForward").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
                          LstmCellForwardOp<T>);                                             \
  REGISTER_KERNEL_BUILDER(                                                                   \
      Name("LstmCellBackward").Device(DEVICE_CPU).TypeConstraint<T>("T"),                    \
      LstmCellBackwardOp<T>);
AUDIOGEN_REGISTER(float)
AUDIOGEN_REGISTER(bfloat16)
#undef AUDIOGEN_REGISTER
