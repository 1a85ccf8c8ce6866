// LstmCellForward / LstmCellBackward: the element-wise part of one LSTM step, fused.
//
// In a TensorFlow graph an LSTM step is ~20 small operations (bias add, split, three sigmoids,
// two tanh, products and sums, one write per saved activation), each a kernel launch and a pass
// over memory; its backward step as many again. These two ops do each in one pass, leaving only
// the recurrent matrix product to TensorFlow. Keras gate order: i, f, g (cell input), o.
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
// sigmoid and tanh are Eigen's, as TensorFlow's own Sigmoid and Tanh kernels compute them.
#include <cstdint>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/CXX11/Tensor"

using namespace tensorflow;

namespace {

using Vec = Eigen::TensorMap<Eigen::Tensor<float, 1, Eigen::RowMajor>>;
using ConstVec = Eigen::TensorMap<Eigen::Tensor<const float, 1, Eigen::RowMajor>>;

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

template <typename T>
void widen(const T* src, float* dst, int64_t n) {
  for (int64_t e = 0; e < n; ++e) dst[e] = static_cast<float>(src[e]);
}

template <typename T>
void narrow(const float* src, T* dst, int64_t n) {
  for (int64_t e = 0; e < n; ++e) dst[e] = static_cast<T>(src[e]);
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
    Tensor *h, *c_out, *saved;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, state, &h));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, state, &c_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, saved_shape, &saved));
    const int64_t n = A * C;
    const float* xp = x.flat<float>().data();
    const float* cp = c.flat<float>().data();
    float* hp = h->flat<float>().data();
    float* cop = c_out->flat<float>().data();
    float* sp = saved->flat<float>().data();
    std::vector<float> r_wide;
    const float* rp;
    if constexpr (std::is_same_v<T, float>) {
      rp = r.flat<float>().data();
    } else {
      r_wide.resize(4 * n);
      widen(r.flat<T>().data(), r_wide.data(), 4 * n);
      rp = r_wide.data();
    }
    // saved = [i, f, g, o, tanh(c_out), c], each [A, C].
    for (int64_t a = 0; a < A; ++a) {
      for (int gate = 0; gate < 4; ++gate) {
        const int64_t in = (a * 4 + gate) * C, out = gate * n + a * C;
        ConstVec zx(xp + in, C), zr(rp + in, C);
        Vec s(sp + out, C);
        if (gate == 2) {
          s = (zx + zr).tanh();
        } else {
          s = (zx + zr).sigmoid();
        }
      }
    }
    ConstVec i(sp, n), f(sp + n, n), g(sp + 2 * n, n), o(sp + 3 * n, n), c_in(cp, n);
    Vec c_new(cop, n), tanh_c(sp + 4 * n, n), h_out(hp, n);
    c_new = f * c_in + i * g;
    tanh_c = c_new.tanh();
    h_out = o * tanh_c;
    std::copy(cp, cp + n, sp + 5 * n);
    if constexpr (std::is_same_v<T, float>) {
      ctx->set_output(1, *h);
    } else {
      Tensor* h_low;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1, state, &h_low));
      narrow(hp, h_low->flat<T>().data(), n);
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
    Tensor *dz, *dc_prev;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, z_shape, &dz));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, state, &dc_prev));
    const int64_t n = A * C;
    const float* sp = saved.flat<float>().data();
    const float *i = sp, *f = sp + n, *g = sp + 2 * n, *o = sp + 3 * n, *tc = sp + 4 * n,
                *cp = sp + 5 * n;
    const float* dop = d_out.flat<float>().data();
    const float* dcp = dc.flat<float>().data();
    const T* dhr = dh_rec.flat<T>().data();
    float* dzp = dz->flat<float>().data();
    float* dcpp = dc_prev->flat<float>().data();
    for (int64_t a = 0; a < A; ++a) {
      float* dzi = dzp + a * 4 * C;
      float *dzf = dzi + C, *dzg = dzi + 2 * C, *dzo = dzi + 3 * C;
      const int64_t base = a * C;
      for (int64_t e = 0; e < C; ++e) {
        const int64_t s = base + e;
        const float dh = dop[s] + static_cast<float>(dhr[s]);
        const float dct = dcp[s] + dh * o[s] * (1.0f - tc[s] * tc[s]);
        dzi[e] = dct * g[s] * i[s] * (1.0f - i[s]);
        dzf[e] = dct * cp[s] * f[s] * (1.0f - f[s]);
        dzg[e] = dct * i[s] * (1.0f - g[s] * g[s]);
        dzo[e] = dh * tc[s] * o[s] * (1.0f - o[s]);
        dcpp[s] = dct * f[s];
      }
    }
    if constexpr (std::is_same_v<T, float>) {
      ctx->set_output(1, *dz);
    } else {
      Tensor* dz_low;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1, z_shape, &dz_low));
      narrow(dzp, dz_low->flat<T>().data(), 4 * n);
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
