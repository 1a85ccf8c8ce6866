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
// Built by audiogen/kernels/stream_matmul.py with -march=native: AVX-512 intrinsics when the CPU
// has them, otherwise plain loops the compiler vectorizes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

using namespace tensorflow;

namespace {
constexpr int64_t kBlock = 64;         // columns per packed block
constexpr int64_t kPrefetchRows = 32;  // software prefetch distance, in rows of a block
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

template <typename T>
constexpr bool kRounds = std::is_same<T, bfloat16>::value;

// float32 -> the nearest bfloat16 (ties to even), kept as a float32.
inline float round_bf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

inline float widen(float w) { return w; }
inline float widen(bfloat16 w) {
  uint16_t bits;
  std::memcpy(&bits, &w, sizeof(bits));
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &wide, sizeof(out));
  return out;
}

#if defined(__AVX512F__)
inline __m512 round_bf16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i biased = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  return _mm512_castsi512_ps(
      _mm512_and_si512(biased, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const bfloat16* p) {
  __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// Rows [0, MR) of x (row stride ldx) times one block [K, 64]; y row stride ldy.
template <int MR, typename T>
void block_rows(const float* x, int64_t ldx, const T* w, int64_t K, float* y, int64_t ldy) {
  __m512 acc[MR][4];
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < 4; ++j) acc[m][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const T* row = w + k * kBlock;
    // Ask for the rows kPrefetchRows ahead (past the block's end: the next block's, contiguous):
    // measured 13.0-13.4 ms against 14.9-19.3 for a dim-1024 tier step at 4 rows.
    const char* ahead = reinterpret_cast<const char*>(row + kPrefetchRows * kBlock);
    for (size_t line = 0; line < kBlock * sizeof(T); line += 64) {
      _mm_prefetch(ahead + line, _MM_HINT_T0);
    }
    const __m512 w0 = load16(row), w1 = load16(row + 16), w2 = load16(row + 32),
                 w3 = load16(row + 48);
    for (int m = 0; m < MR; ++m) {
      const __m512 xb = _mm512_set1_ps(x[m * ldx + k]);
      acc[m][0] = _mm512_fmadd_ps(xb, w0, acc[m][0]);
      acc[m][1] = _mm512_fmadd_ps(xb, w1, acc[m][1]);
      acc[m][2] = _mm512_fmadd_ps(xb, w2, acc[m][2]);
      acc[m][3] = _mm512_fmadd_ps(xb, w3, acc[m][3]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < 4; ++j)
      _mm512_storeu_ps(y + m * ldy + 16 * j, kRounds<T> ? round_bf16(acc[m][j]) : acc[m][j]);
}
#else
template <int MR, typename T>
void block_rows(const float* x, int64_t ldx, const T* w, int64_t K, float* y, int64_t ldy) {
  float acc[MR][kBlock] = {};
  for (int64_t k = 0; k < K; ++k) {
    const T* row = w + k * kBlock;
    for (int m = 0; m < MR; ++m) {
      const float xv = x[m * ldx + k];
      for (int64_t j = 0; j < kBlock; ++j) acc[m][j] += xv * widen(row[j]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int64_t j = 0; j < kBlock; ++j)
      y[m * ldy + j] = kRounds<T> ? round_bf16(acc[m][j]) : acc[m][j];
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

// All M rows of x times one block, in groups of 4 rows.
template <typename T>
void block_all_rows(const float* x, int64_t M, int64_t K, const T* w, float* y, int64_t N) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) block_rows<4>(x + m * K, K, w, K, y + m * N, N);
  switch (M - m) {
    case 3: block_rows<3>(x + m * K, K, w, K, y + m * N, N); break;
    case 2: block_rows<2>(x + m * K, K, w, K, y + m * N, N); break;
    case 1: block_rows<1>(x + m * K, K, w, K, y + m * N, N); break;
    default: break;
  }
}

}  // namespace

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
    auto work = [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        block_all_rows<T>(xp, M, K, wp + b * K * kBlock, yp + b * kBlock, N);
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const int64_t threads = pool->NumThreads();
    if (threads <= 1 || blocks < 2) {
      work(0, blocks);
      return;
    }
    // One contiguous run of blocks per thread.
    const int64_t per_thread = (blocks + threads - 1) / threads;
    pool->ParallelFor(blocks,
                      thread::ThreadPool::SchedulingParams(
                          thread::ThreadPool::SchedulingStrategy::kFixedBlockSize, std::nullopt,
                          per_thread),
                      work);
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
REGISTER_KERNEL_BUILDER(Name("StreamMatMul").Device(DEVICE_CPU).TypeConstraint<float>("T"),
                        StreamMatMulOp<float>);
REGISTER_KERNEL_BUILDER(Name("StreamMatMul").Device(DEVICE_CPU).TypeConstraint<bfloat16>("T"),
                        StreamMatMulOp<bfloat16>);
