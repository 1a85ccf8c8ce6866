// Shared by the stream ops (stream_matmul.cc, sample_frame.cc): products of a few rows with
// a weight packed as [N / 64, K, 64] (see StreamPack), bfloat16 rounding, and thread splitting.
// Included by each op library's single source (audiogen/kernels/compiled.py keys a build by
// this header too).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "tensorflow/core/framework/op_kernel.h"

namespace stream_blocks {

using tensorflow::bfloat16;
using tensorflow::OpKernelContext;

constexpr int64_t kBlock = 64;         // columns per packed block
constexpr int64_t kPrefetchRows = 32;  // software prefetch distance, in rows of a block

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
    // Ask for the rows kPrefetchRows ahead (past the block's end: the next block's, contiguous),
    // which keeps the stream ahead of the hardware prefetchers at a few rows.
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

// Runs work(b0, b1) over [0, blocks) in one contiguous run per intra-op thread.
template <typename F>
void per_thread(OpKernelContext* ctx, int64_t blocks, F work) {
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  const int64_t threads = pool->NumThreads();
  if (threads <= 1 || blocks < 2) {
    work(0, blocks);
    return;
  }
  using Pool = tensorflow::thread::ThreadPool;
  pool->ParallelFor(blocks,
                    Pool::SchedulingParams(Pool::SchedulingStrategy::kFixedBlockSize,
                                           std::nullopt, (blocks + threads - 1) / threads),
                    work);
}

}  // namespace stream_blocks
