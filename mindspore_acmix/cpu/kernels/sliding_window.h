// What the sliding-window CPU kernels (local_attention_cpu.cc, san_cpu.cc) share: reflection
// padding of one channel, its adjoint, and the multiply-adds between a query grid and one
// window position of a padded channel. cpu/build.py hashes this header with each source.
//
// A query grid of ho x wo queries at stride s reads window position (a, b) of the padded
// channel (hp x wp) at rows y*s + a*dil and columns x*s + b*dil: `window` below is the padded
// channel advanced to (a*dil, b*dil). Padding is reflection by pad (torch ReflectionPad2d:
// the edge is not repeated), which needs pad < h and pad < w.
#ifndef MINDSPORE_ACMIX_SLIDING_WINDOW_H_
#define MINDSPORE_ACMIX_SLIDING_WINDOW_H_

#include <cstdint>
#include <cstring>

#include "aot_kernel.h"

namespace sliding_window {

inline int64_t Reflect(int64_t i, int64_t n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * n - 2 - i;
  return i;
}

struct Plane {
  int64_t h, w, pad, s, ho, wo, hp, wp;
};

// Completes a kernel's geometry g from its k, s, dil, h, w: the centring reflection padding,
// the ceil(h / s) x ceil(w / s) query grid and the padded sizes.
template <class Geo>
int CompleteGeometry(Geo *g) {
  g->pad = g->dil * (g->k - 1) / 2;
  if (g->pad >= g->h || g->pad >= g->w) return kBadShape;  // reflection needs pad < size
  g->ho = (g->h + g->s - 1) / g->s;
  g->wo = (g->w + g->s - 1) / g->s;
  g->hp = g->h + 2 * g->pad;
  g->wp = g->w + 2 * g->pad;
  return kOk;
}

// dst (hp, wp) = reflection padding of src (h, w); col_src[x] = Reflect(x - pad, w).
inline void Pad(const float *src, float *dst, const Plane &p, const int64_t *col_src) {
  for (int64_t y = 0; y < p.hp; ++y) {
    const float *s = src + Reflect(y - p.pad, p.h) * p.w;
    float *t = dst + y * p.wp;
    for (int64_t x = 0; x < p.wp; ++x) t[x] = s[col_src[x]];
  }
}

// dst (h, w) = adjoint of Pad applied to src (hp, wp): mirrored entries are added back onto
// the pixel they were copied from.
inline void Fold(const float *src, float *dst, const Plane &p, const int64_t *col_src) {
  std::memset(dst, 0, sizeof(float) * p.h * p.w);
  for (int64_t y = 0; y < p.hp; ++y) {
    const float *s = src + y * p.wp;
    float *t = dst + Reflect(y - p.pad, p.h) * p.w;
    for (int64_t x = 0; x < p.wp; ++x) t[col_src[x]] += s[x];
  }
}

// out[i] += a[i] * window[i] over the query grid (a, out: ho x wo).
inline void MulAdd(const float *a, const float *window, const Plane &p, float *out) {
  for (int64_t y = 0; y < p.ho; ++y) {
    const float *ar = a + y * p.wo;
    const float *br = window + y * p.s * p.wp;
    float *orow = out + y * p.wo;
    if (p.s == 1) {
#pragma omp simd
      for (int64_t x = 0; x < p.wo; ++x) orow[x] += ar[x] * br[x];
    } else {
      for (int64_t x = 0; x < p.wo; ++x) orow[x] += ar[x] * br[x * p.s];
    }
  }
}

// window[i] += a[i] * b[i] (b null: a alone), scattering into a padded gradient; within a
// row the targets are distinct, so the row loop vectorises.
inline void Scatter(const float *a, const float *b, const Plane &p, float *window) {
  for (int64_t y = 0; y < p.ho; ++y) {
    const float *ar = a + y * p.wo;
    float *drow = window + y * p.s * p.wp;
    if (b == nullptr) {
      for (int64_t x = 0; x < p.wo; ++x) drow[x * p.s] += ar[x];
    } else if (p.s == 1) {
      const float *br = b + y * p.wo;
#pragma omp simd
      for (int64_t x = 0; x < p.wo; ++x) drow[x] += ar[x] * br[x];
    } else {
      const float *br = b + y * p.wo;
      for (int64_t x = 0; x < p.wo; ++x) drow[x * p.s] += ar[x] * br[x];
    }
  }
}

}  // namespace sliding_window

#endif  // MINDSPORE_ACMIX_SLIDING_WINDOW_H_
