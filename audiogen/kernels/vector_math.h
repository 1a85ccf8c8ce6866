// Vector maths shared by the op libraries (lstm_cell.cc, sample_frame.cc): exp of 16 floats
// with AVX-512 by range reduction and a degree-7 polynomial (relative error ~1e-7, against
// std::exp). Included by each library's single source (audiogen/kernels/compiled.py keys a build
// by this header too).
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>

#include <initializer_list>

namespace vector_math {

inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 t = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);  // ln 2, high bits
  t = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.4286068203094173e-06f), t);  // and the rest
  __m512 p = _mm512_set1_ps(1.0f / 5040);                                  // Taylor, to t^7
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f})
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c));
  return _mm512_scalef_ps(p, n);
}

}  // namespace vector_math
#endif
