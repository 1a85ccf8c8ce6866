// SampleFrame: the f0 samples of one bottom frame of SampleRNN generation, for b sequences, in
// one op: per sample, the sample-level MLP (first layer as a lookup table, the dim x dim hidden
// layer, the output layer) and a draw from softmax(logits * inv_temp) by inverse CDF with a
// given uniform number. audiogen/samplernn/sampler.py's XLA loop computes the same.
//
// Per sample and sequence r (window = the f0 previous samples, oldest first):
//   h1 = relu(sum_j table[j * q + window[j]] + cond[r, i])            [dim]
//   h2 = relu(h1 @ W2 + b2)                                            [dim]
//   logits = h2 @ WO + bo                                              [q]
//   sample = #{c : cumsum(exp(logits * inv_temp - max))[c] <= u * sum} (at most q - 1)
// With bfloat16 weights, h1, h1 @ W2, h2 and h2 @ WO are rounded to bfloat16 (nearest even), as
// the model's bfloat16 layers do; sums are float32.
//
// Why an op: XLA runs this loop on one thread, and converts bfloat16 weights to float32 on every
// sample (the conversion is not hoisted out of the loop). Here the two products are split by
// 64-column blocks of the packed weights (stream_blocks.h) between this thread and the intra-op
// threads, which stay in the op for the whole frame (`Crew`: waking a pool thread per product, as
// ParallelFor does, costs more than a small product). Each thread takes the same blocks sample
// after sample, so its share of a dim-1024 bfloat16 layer (1.25 MB) stays in its core's L2 cache.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "stream_blocks.h"
#include "vector_math.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

using namespace tensorflow;
using namespace stream_blocks;

REGISTER_OP("SampleFrame")
    .Input("table: float")
    .Input("cond: float")
    .Input("window: int32")
    .Input("uniform: float")
    .Input("inv_temp: float")
    .Input("hidden_kernel: T")
    .Input("hidden_bias: float")
    .Input("output_kernel: T")
    .Input("output_bias: float")
    .Output("samples: int32")
    .Output("logits: float")
    .Attr("T: {float, bfloat16}")
    .Attr("draw: bool = true")
    .SetShapeFn([](shape_inference::InferenceContext* c) {
      shape_inference::ShapeHandle window, bias;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 2, &window));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(8), 1, &bias));
      c->set_output(0, window);
      c->set_output(1, c->MakeShape({c->Dim(window, 0), c->Dim(window, 1), c->Dim(bias, 0)}));
      return OkStatus();
    })
    .Doc("One bottom frame of SampleRNN samples: table [f0 * q, dim], cond [b, f0, dim], window "
         "[f0, b] int32 (the previous f0 samples), uniform [f0, b], inv_temp [b], hidden_kernel "
         "and output_kernel packed by StreamPack from [dim, dim] and [dim, q], hidden_bias [dim], "
         "output_bias [q] -> samples [f0, b] int32, logits [f0, b, q]. With draw=false, the "
         "products only (a benchmark's floor): no draws, the window is kept and returned.");

namespace {

// Phases of work units run by this thread (the leader) and the intra-op pool's threads (helpers),
// which spin between phases until the crew is destroyed. The leader claims units from the front,
// helpers from the back, so with equal speeds each unit goes to the same thread phase after
// phase. A helper the pool starts late just joins late: the leader never waits for a helper,
// only for the units one has claimed. A unit is claimed by stamping it with the phase number.
class Crew {
 public:
  Crew(OpKernelContext* ctx, int64_t max_units) : state_(std::make_shared<State>(max_units)) {
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    for (int64_t i = 1; i < pool->NumThreads() && max_units > 1; ++i) {
      pool->Schedule([state = state_] { help(*state); });
    }
  }
  ~Crew() { state_->phase.store(kFinished, std::memory_order_release); }

  // Runs fn(u) for every u in [0, units) (units <= max_units), and returns when all are done.
  void run(int64_t units, const std::function<void(int64_t)>& fn) {
    State& s = *state_;
    const int64_t p = ++phase_;
    // The phase number guards the phase's description as a sequence lock does: a helper that
    // read it while it changed finds the phase number changed too.
    s.phase.store(kBusy, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    s.units.store(units, std::memory_order_relaxed);
    s.fn.store(&fn, std::memory_order_relaxed);
    s.done.store(0, std::memory_order_relaxed);
    s.phase.store(p, std::memory_order_release);
    for (int64_t u = 0; u < units; ++u) {
      if (s.claim(u, p)) {
        fn(u);
        s.done.fetch_add(1, std::memory_order_acq_rel);
      }
    }
    while (s.done.load(std::memory_order_acquire) < units) pause();
  }

 private:
  static constexpr int64_t kFinished = -1, kBusy = -2;

  struct State {
    explicit State(int64_t max_units) : claimed(new std::atomic<int64_t>[max_units]) {
      for (int64_t u = 0; u < max_units; ++u) claimed[u].store(0, std::memory_order_relaxed);
    }
    bool claim(int64_t u, int64_t p) {
      int64_t v = claimed[u].load(std::memory_order_relaxed);
      while (v < p) {
        if (claimed[u].compare_exchange_weak(v, p, std::memory_order_acq_rel)) return true;
      }
      return false;
    }
    std::atomic<int64_t> phase{0}, units{0}, done{0};
    std::atomic<const std::function<void(int64_t)>*> fn{nullptr};
    std::unique_ptr<std::atomic<int64_t>[]> claimed;
  };

  static void pause() {
#if defined(__AVX512F__)
    _mm_pause();
#endif
  }

  static void help(State& s) {
    int64_t seen = 0, idle = 0;
    while (true) {
      const int64_t p = s.phase.load(std::memory_order_acquire);
      if (p == kFinished) return;
      if (p == seen || p == kBusy) {
        if (++idle % 4096 == 0) std::this_thread::yield();
        pause();
        continue;
      }
      idle = 0;
      // p's description, or, if the leader has moved on meanwhile, a later one's: then p is
      // found over at the first claim below, and nothing runs.
      const int64_t units = s.units.load(std::memory_order_relaxed);
      const auto* fn = s.fn.load(std::memory_order_relaxed);
      for (int64_t u = units - 1; u >= 0; --u) {
        if (!s.claim(u, p)) continue;
        // Claimed with phase p's stamp: run it only if p is still the phase (what was read
        // above is then p's, and stays valid until this unit is counted done).
        std::atomic_thread_fence(std::memory_order_acquire);
        if (s.phase.load(std::memory_order_relaxed) != p) break;
        (*fn)(u);
        s.done.fetch_add(1, std::memory_order_acq_rel);
      }
      seen = p;
    }
  }

  std::shared_ptr<State> state_;
  int64_t phase_ = 0;
};

// One draw from softmax(logits * inv_temp) by inverse CDF: the number of levels whose inclusive
// cumulative weight is <= u * total, at most q - 1. `weights` [q] is scratch.
int32_t draw(const float* logits, int64_t q, float inv_temp, float u, float* weights) {
#if defined(__AVX512F__)
  const __m512 scale = _mm512_set1_ps(inv_temp);
  __m512 top16 = _mm512_set1_ps(-INFINITY);
  for (int64_t c = 0; c < q; c += 16) {
    const __mmask16 m = q - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (q - c)) - 1);
    const __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, logits + c), scale);
    top16 = _mm512_mask_max_ps(top16, m, top16, x);
  }
  const __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(top16));
  for (int64_t c = 0; c < q; c += 16) {
    const __mmask16 m = q - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (q - c)) - 1);
    const __m512 x = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, logits + c), scale, top);
    _mm512_mask_storeu_ps(weights + c, m, vector_math::exp16(x));
  }
#else
  float top = -INFINITY;
  for (int64_t c = 0; c < q; ++c) top = std::max(top, logits[c] * inv_temp);
  for (int64_t c = 0; c < q; ++c) weights[c] = std::exp(logits[c] * inv_temp - top);
#endif
  float total = 0.0f;
  for (int64_t c = 0; c < q; ++c) {
    total += weights[c];
    weights[c] = total;                                   // inclusive cumulative weight
  }
  const float target = u * total;
  int64_t index = 0;
  for (int64_t c = 0; c < q; ++c) index += weights[c] <= target;
  return static_cast<int32_t>(std::min(index, q - 1));
}

// Row r's first-layer activations: relu(sum of the window's table rows + cond), rounded to
// bfloat16 when the products are.
template <typename T>
void first_layer(const float* table, const int32_t* window, int64_t b, int64_t r, int64_t f0,
                 int64_t q, int64_t dim, const float* cond, float* h1) {
  std::copy(cond, cond + dim, h1);
  for (int64_t j = 0; j < f0; ++j) {
    const float* row = table + (j * q + window[j * b + r]) * dim;
    for (int64_t d = 0; d < dim; ++d) h1[d] += row[d];
  }
  for (int64_t d = 0; d < dim; ++d) {
    const float v = std::max(h1[d], 0.0f);
    h1[d] = kRounds<T> ? round_bf16(v) : v;
  }
}

template <typename T>
class SampleFrameOp : public OpKernel {
 public:
  explicit SampleFrameOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("draw", &draw_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& table = ctx->input(0);
    const Tensor& cond = ctx->input(1);
    const Tensor& window_in = ctx->input(2);
    const Tensor& uniform = ctx->input(3);
    const Tensor& inv_temp = ctx->input(4);
    const Tensor& w2 = ctx->input(5);
    const Tensor& b2 = ctx->input(6);
    const Tensor& wo = ctx->input(7);
    const Tensor& bo = ctx->input(8);
    OP_REQUIRES(ctx, window_in.dims() == 2 && table.dims() == 2 && bo.dims() == 1,
                errors::InvalidArgument("SampleFrame: expected window [f0, b], table [f0 * q, "
                                        "dim] and output_bias [q], got ",
                                        window_in.shape().DebugString(), ", ",
                                        table.shape().DebugString(), " and ",
                                        bo.shape().DebugString()));
    const int64_t f0 = window_in.dim_size(0), b = window_in.dim_size(1);
    const int64_t q = bo.dim_size(0), dim = table.dim_size(1);
    const int64_t n2 = (dim + kBlock - 1) / kBlock, n3 = (q + kBlock - 1) / kBlock;
    OP_REQUIRES(ctx, q > 0 && table.dim_size(0) == f0 * q &&
                         cond.shape() == TensorShape({b, f0, dim}) &&
                         uniform.shape() == TensorShape({f0, b}) &&
                         inv_temp.shape() == TensorShape({b}) &&
                         w2.shape() == TensorShape({n2, dim, kBlock}) &&
                         b2.shape() == TensorShape({dim}) &&
                         wo.shape() == TensorShape({n3, dim, kBlock}),
                errors::InvalidArgument(
                    "SampleFrame: with window [f0=", f0, ", b=", b, "], output_bias [q=", q,
                    "] and table [.., dim=", dim, "] expected table [", f0 * q, ", ", dim,
                    "], cond [", b, ", ", f0, ", ", dim, "], uniform [", f0, ", ", b,
                    "], inv_temp [", b, "], hidden_kernel [", n2, ", ", dim, ", 64], "
                    "hidden_bias [", dim, "], output_kernel [", n3, ", ", dim, ", 64]; got ",
                    table.shape().DebugString(), ", ", cond.shape().DebugString(), ", ",
                    uniform.shape().DebugString(), ", ", inv_temp.shape().DebugString(), ", ",
                    w2.shape().DebugString(), ", ", b2.shape().DebugString(), ", ",
                    wo.shape().DebugString()));
    std::vector<int32_t> window(window_in.flat<int32_t>().data(),
                                window_in.flat<int32_t>().data() + f0 * b);
    for (int32_t level : window) {
      OP_REQUIRES(ctx, level >= 0 && level < q,
                  errors::InvalidArgument("SampleFrame: window levels must lie in [0, ", q,
                                          "), got ", level));
    }
    Tensor* samples = nullptr;
    Tensor* logits = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({f0, b}), &samples));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({f0, b, q}), &logits));
    if (f0 == 0 || b == 0) return;

    const float* tp = table.flat<float>().data();
    const float* cp = cond.flat<float>().data();
    const float* up = uniform.flat<float>().data();
    const float* temp = inv_temp.flat<float>().data();
    const T* w2p = w2.flat<T>().data();
    const T* wop = wo.flat<T>().data();
    const float* b2p = b2.flat<float>().data();
    const float* bop = bo.flat<float>().data();
    float* lp = logits->flat<float>().data();
    std::vector<float> h1(b * dim), y2(b * n2 * kBlock), h2(b * dim), y3(b * n3 * kBlock),
        weights(b * q);

    // Row-parallel part of step i: draw step i - 1's sample (i > 0) and shift it into the
    // window, then step i's first layer (i < f0).
    int64_t i = 0;
    const std::function<void(int64_t)> row = [&](int64_t r) {
      if (i > 0 && draw_) {
        const int64_t s = i - 1;
        const int32_t level =
            draw(lp + (s * b + r) * q, q, temp[r], up[s * b + r], weights.data() + r * q);
        for (int64_t j = 0; j + 1 < f0; ++j) window[j * b + r] = window[(j + 1) * b + r];
        window[(f0 - 1) * b + r] = level;
      }
      if (i < f0) {
        first_layer<T>(tp, window.data(), b, r, f0, q, dim, cp + (r * f0 + i) * dim,
                       h1.data() + r * dim);
      }
    };
    const std::function<void(int64_t)> hidden = [&](int64_t k) {
      block_all_rows<T>(h1.data(), b, dim, w2p + k * dim * kBlock, y2.data() + k * kBlock,
                        n2 * kBlock);
      for (int64_t r = 0; r < b; ++r) {
        for (int64_t d = k * kBlock; d < std::min(dim, (k + 1) * kBlock); ++d) {
          const float v = std::max(y2[r * n2 * kBlock + d] + b2p[d], 0.0f);
          h2[r * dim + d] = kRounds<T> ? round_bf16(v) : v;
        }
      }
    };
    const std::function<void(int64_t)> output = [&](int64_t k) {
      block_all_rows<T>(h2.data(), b, dim, wop + k * dim * kBlock, y3.data() + k * kBlock,
                        n3 * kBlock);
      for (int64_t r = 0; r < b; ++r) {
        for (int64_t c = k * kBlock; c < std::min(q, (k + 1) * kBlock); ++c)
          lp[(i * b + r) * q + c] = y3[r * n3 * kBlock + c] + bop[c];
      }
    };
    {
      Crew crew(ctx, std::max({b, n2, n3}));
      for (; i < f0; ++i) {
        crew.run(b, row);
        crew.run(n2, hidden);
        crew.run(n3, output);
      }
      crew.run(b, row);
    }
    std::copy(window.begin(), window.end(), samples->flat<int32_t>().data());
  }

 private:
  bool draw_;
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("SampleFrame").Device(DEVICE_CPU).TypeConstraint<float>("T"),
                        SampleFrameOp<float>);
REGISTER_KERNEL_BUILDER(Name("SampleFrame").Device(DEVICE_CPU).TypeConstraint<bfloat16>("T"),
                        SampleFrameOp<bfloat16>);
