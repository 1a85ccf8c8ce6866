// StreamMatMul: y = x @ W for a few rows x [M, K] (M = the number of sequences being generated)
// and a large weight W [K, N] stored packed as [N / 64, K, 64], float32 or bfloat16.
//
// At small M a product is bound by how fast W streams from memory. The packed layout makes each
// 64-column block one contiguous stream, the blocks are split evenly between the intra-op
// threads, and each block is read once for all rows of x (from L2 for the second and later group
// of 4 rows). bfloat16 weights are widened to float32 in registers: half the bytes per weight.
// With them, x and the results are rounded to bfloat16 (nearest even), as in a bfloat16 matmul
// with float32 accumulation. Accumulation is float32, in the order k = 0, 1, ..., K - 1.
//
// StreamMatMulPlain: the same product for a float32 W [K, N] as it is (no packing, which for
// float32 would be a copy of every weight per generate call). The threads split the columns in
// blocks of 64; each walks W in panels of kPanelRows rows, and within a panel block by block, the
// 4 x 64 results of a block accumulated in registers over the panel's rows and added to y in
// memory between panels. A panel's rows are read as one short stream each, which the hardware
// prefetchers follow (faster than the packed layout for one row; a block walked down all K rows
// at once, 4 KB apart, would defeat them).
//
// Built by audiogen/kernels/stream_matmul.py with -march=native: AVX-512 intrinsics when the CPU
// has them, otherwise plain loops the compiler vectorizes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "stream_blocks.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

using namespace tensorflow;
using namespace stream_blocks;

namespace {
constexpr int64_t kPanelRows = 16;     // rows of W per panel (StreamMatMulPlain)
}  // namespace

REGISTER_OP("StreamMatMul")
    .Input("x: float")
    .Input("packed: T")
    .Output("y: float")
    .Attr("T: {float, bfloat16}")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      shape_inference::ShapeHandle x, w;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 3, &w));
      shape_inference::DimensionHandle k, n;
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(x, 1), c->Dim(w, 1), &k));
      TF_RETURN_IF_ERROR(c->Multiply(c->Dim(w, 0), kBlock, &n));
      c->set_output(0, c->Matrix(c->Dim(x, 0), n));
      return OkStatus();
    })
    .Doc("x [M, K] float32 @ W, with W [K, N] packed as [N / 64, K, 64] -> [M, N] float32.");

REGISTER_OP("StreamMatMulPlain")
    .Input("x: float")
    .Input("w: float")
    .Output("y: float")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      shape_inference::ShapeHandle x, w;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &w));
      shape_inference::DimensionHandle k;
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(x, 1), c->Dim(w, 0), &k));
      c->set_output(0, c->Matrix(c->Dim(x, 0), c->Dim(w, 1)));
      return OkStatus();
    })
    .Doc("x [M, K] float32 @ W [K, N] float32 -> [M, N] float32, W read in panels of rows.");

REGISTER_OP("StreamPack")
    .Input("w: float")
    .Output("packed: T")
    .Attr("T: {float, bfloat16}")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      shape_inference::ShapeHandle w;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &w));
      shape_inference::DimensionHandle n = c->Dim(w, 1), blocks = c->UnknownDim();
      if (c->ValueKnown(n)) blocks = c->MakeDim((c->Value(n) + kBlock - 1) / kBlock);
      c->set_output(0, c->MakeShape({blocks, c->Dim(w, 0), c->MakeDim(kBlock)}));
      return OkStatus();
    })
    .Doc("W [K, N] float32 -> [ceil(N / 64), K, 64] in T (columns zero-padded, rounded to "
         "nearest even for bfloat16), the layout StreamMatMul reads.");

namespace {

#if defined(__AVX512F__)
// Rows [0, MR) of x (row stride ldx) times W[k0:k1, c:c + width] (W row stride ldw, width <= 64),
// added to y (row stride ldy), or written to y when `first`.
template <int MR>
void panel_rows(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t k0, int64_t k1,
                int64_t width, float* y, int64_t ldy, bool first) {
  __mmask16 mask[4];
  for (int j = 0; j < 4; ++j) {
    const int64_t lanes = std::clamp<int64_t>(width - 16 * j, 0, 16);
    mask[j] = static_cast<__mmask16>((1u << lanes) - 1);
  }
  __m512 acc[MR][4];
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < 4; ++j)
      acc[m][j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[j], y + m * ldy + 16 * j);
  for (int64_t k = k0; k < k1; ++k) {
    const float* row = w + k * ldw;
    __m512 wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = _mm512_maskz_loadu_ps(mask[j], row + 16 * j);
    for (int m = 0; m < MR; ++m) {
      const __m512 xb = _mm512_set1_ps(x[m * ldx + k]);
      for (int j = 0; j < 4; ++j) acc[m][j] = _mm512_fmadd_ps(xb, wv[j], acc[m][j]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < 4; ++j) _mm512_mask_storeu_ps(y + m * ldy + 16 * j, mask[j], acc[m][j]);
}
#else
template <int MR>
void panel_rows(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t k0, int64_t k1,
                int64_t width, float* y, int64_t ldy, bool first) {
  for (int m = 0; m < MR; ++m) {
    float acc[kBlock];
    for (int64_t j = 0; j < width; ++j) acc[j] = first ? 0.0f : y[m * ldy + j];
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t j = 0; j < width; ++j) acc[j] += x[m * ldx + k] * w[k * ldw + j];
    for (int64_t j = 0; j < width; ++j) y[m * ldy + j] = acc[j];
  }
}
#endif

// One row of a block: `width` <= 64 values, zero-padded to 64, rounded to nearest even for
// bfloat16 (as tf.cast).
inline void pack_row(const float* src, int64_t width, float* dst) {
  std::memcpy(dst, src, width * sizeof(float));
  std::memset(dst + width, 0, (kBlock - width) * sizeof(float));
}

inline void pack_row(const float* src, int64_t width, bfloat16* dst) {
#if defined(__AVX512F__)
  if (width == kBlock) {
    for (int64_t j = 0; j < kBlock; j += 16) {
      const __m512i bits = _mm512_castps_si512(round_bf16(_mm512_loadu_ps(src + j)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j),
                          _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16)));
    }
    return;
  }
#endif
  for (int64_t j = 0; j < kBlock; ++j) dst[j] = static_cast<bfloat16>(j < width ? src[j] : 0.0f);
}


}  // namespace

// All M rows of x times one panel of one block of columns, in groups of 4 rows.
void panel_all_rows(const float* x, int64_t M, int64_t K, const float* w, int64_t N, int64_t k0,
                    int64_t k1, int64_t c, float* y) {
  const int64_t width = std::min(kBlock, N - c);
  const bool first = k0 == 0;
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) panel_rows<4>(x + m * K, K, w + c, N, k0, k1, width, y + m * N + c, N, first);
  switch (M - m) {
    case 3: panel_rows<3>(x + m * K, K, w + c, N, k0, k1, width, y + m * N + c, N, first); break;
    case 2: panel_rows<2>(x + m * K, K, w + c, N, k0, k1, width, y + m * N + c, N, first); break;
    case 1: panel_rows<1>(x + m * K, K, w + c, N, k0, k1, width, y + m * N + c, N, first); break;
    default: break;
  }
}

template <typename T>
class StreamMatMulOp : public OpKernel {
 public:
  explicit StreamMatMulOp(OpKernelConstruction* c) : OpKernel(c) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& w = ctx->input(1);
    OP_REQUIRES(ctx, x.dims() == 2 && w.dims() == 3 && w.dim_size(2) == kBlock &&
                         x.dim_size(1) == w.dim_size(1),
                errors::InvalidArgument("StreamMatMul: expected x [M, K] and packed [N/64, K, 64]",
                                        ", got ", x.shape().DebugString(), " and ",
                                        w.shape().DebugString()));
    const int64_t M = x.dim_size(0), K = x.dim_size(1), blocks = w.dim_size(0);
    const int64_t N = blocks * kBlock;
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({M, N}), &y));
    if (M == 0 || N == 0) return;
    const float* xp = x.flat<float>().data();
    std::vector<float> x_rounded;
    if (kRounds<T>) {
      x_rounded.assign(xp, xp + M * K);
      for (float& v : x_rounded) v = round_bf16(v);
      xp = x_rounded.data();
    }
    const T* wp = w.flat<T>().data();
    float* yp = y->flat<float>().data();
    per_thread(ctx, blocks, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        block_all_rows<T>(xp, M, K, wp + b * K * kBlock, yp + b * kBlock, N);
    });
  }
};

class StreamMatMulPlainOp : public OpKernel {
 public:
  explicit StreamMatMulPlainOp(OpKernelConstruction* c) : OpKernel(c) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& w = ctx->input(1);
    OP_REQUIRES(ctx, x.dims() == 2 && w.dims() == 2 && x.dim_size(1) == w.dim_size(0),
                errors::InvalidArgument("StreamMatMulPlain: expected x [M, K] and w [K, N], got ",
                                        x.shape().DebugString(), " and ",
                                        w.shape().DebugString()));
    const int64_t M = x.dim_size(0), K = x.dim_size(1), N = w.dim_size(1);
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({M, N}), &y));
    if (M == 0 || N == 0) return;
    float* yp = y->flat<float>().data();
    if (K == 0) {
      std::fill(yp, yp + M * N, 0.0f);
      return;
    }
    const float* xp = x.flat<float>().data();
    const float* wp = w.flat<float>().data();
    per_thread(ctx, (N + kBlock - 1) / kBlock, [&](int64_t b0, int64_t b1) {
      for (int64_t k0 = 0; k0 < K; k0 += kPanelRows)
        for (int64_t b = b0; b < b1; ++b)
          panel_all_rows(xp, M, K, wp, N, k0, std::min(K, k0 + kPanelRows), b * kBlock, yp);
    });
  }
};

template <typename T>
class StreamPackOp : public OpKernel {
 public:
  explicit StreamPackOp(OpKernelConstruction* c) : OpKernel(c) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& w = ctx->input(0);
    OP_REQUIRES(ctx, w.dims() == 2,
                errors::InvalidArgument("StreamPack: expected w [K, N], got ",
                                        w.shape().DebugString()));
    const int64_t K = w.dim_size(0), N = w.dim_size(1);
    const int64_t blocks = (N + kBlock - 1) / kBlock;
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({blocks, K, kBlock}), &out));
    const float* src = w.flat<float>().data();
    T* dst = out->flat<T>().data();
    // Rows of W in order (contiguous reads), each cut into its blocks' rows.
    auto work = [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t c0 = b * kBlock;
          pack_row(src + k * N + c0, std::min<int64_t>(kBlock, N - c0),
                   dst + (b * K + k) * kBlock);
        }
      }
    };
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        K, N * (sizeof(float) + sizeof(T)), work);
  }
};

REGISTER_KERNEL_BUILDER(Name("StreamPack").Device(DEVICE_CPU).TypeConstraint<float>("T"),
                        StreamPackOp<float>);
REGISTER_KERNEL_BUILDER(Name("StreamPack").Device(DEVICE_CPU).TypeConstraint<bfloat16>("T"),
                        StreamPackOp<bfloat16>);
REGISTER_KERNEL_BUILDER(Name("StreamMatMulPlain").Device(DEVICE_CPU), StreamMatMulPlainOp);
REGISTER_KERNEL_BUILDER(Name("StreamMatMul").Device(DEVICE_CPU).TypeConstraint<float>("T"),
                        StreamMatMulOp<float>);
REGISTER_KERNEL_BUILDER(Name("StreamMatMul").Device(DEVICE_CPU).TypeConstraint<bfloat16>("T"),
                        StreamMatMulOp<bfloat16>);
