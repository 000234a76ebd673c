// The data movement of a 'same'-padded convolution computed as matmuls on CPU
// (mindspore_acmix/layers/conv.py), as two MindSpore AOT kernels that are each other's adjoint.
//
// MindSpore 2.10's CPU slice, strided-slice, concat and pad kernels (and their gradients) are
// slow next to the arithmetic they feed: the per-tap formulation spent more time shifting maps
// through chains of them than multiplying. These two kernels do all the shifting of one
// convolution in a single pass, forward and backward.
//
// Geometry: x is (B, G*C, H, W) (G groups of C channels); kernel k (odd), stride s, dilation
// dil, zero padding pad = dil*(k/2), so the output is Ho = ceil(H/s) by Wo = ceil(W/s). Tap
// t = (a, c) of output pixel (yo, xo) reads x at (yo*s + oy, xo*s + ox) with
// (oy, ox) = (a*dil - pad, c*dil - pad), or the opposite offsets when `flip` is set (used to
// sum per-tap products of a stride-1 convolution: out[p] = sum_t z_t[p + off_t] is the fold
// of z with the offsets negated).
//
//   AcmixTapUnfold(x, cfg, like) -> cols (B, G*k*k*C, Ho, Wo)
//       cols[b, (g*k*k + t)*C + ch, yo, xo] = x[b, g*C + ch, tap t of (yo, xo)], 0 outside
//   AcmixTapFold(cols, cfg, like) -> x (B, G*C, H, W), the adjoint: every cols entry is
//       added onto the x pixel it was read from (entries that read padding are dropped)
//
// cfg is an int32 tensor [k, stride, dilation, groups, flip]; `like` is any tensor whose last two
// dimensions are (H, W): Fold cannot infer H from Ho when s > 1. Its data are not read.
// Each output plane is written by one OpenMP thread, so the results do not depend on the
// number of threads.
#include <cstdint>
#include <cstring>

#include "aot_kernel.h"

namespace {

struct Geometry {
  int64_t b, g, c, h, w, k, s, dil, pad, ho, wo, flip;
  int64_t kk() const { return k * k; }
  int64_t OffsetY(int64_t t) const { return flip ? pad - (t / k) * dil : (t / k) * dil - pad; }
  int64_t OffsetX(int64_t t) const { return flip ? pad - (t % k) * dil : (t % k) * dil - pad; }
};

// Reads cfg and the (H, W) of `like`; `wide` is the tensor holding G*C channels, `cols` the
// one holding G*k*k*C (either may be the input).
int ReadGeometry(void **params, int64_t **shapes, int *ndims, const char **dtypes, int wide,
                 int cols, Geometry *g) {
  if (std::strcmp(dtypes[0], "float32") != 0) return kBadDtype;
  if (std::strcmp(dtypes[1], "int32") != 0 || ndims[1] != 1 || shapes[1][0] != 5)
    return kBadConfig;
  if (ndims[0] != 4 || ndims[2] < 2) return kBadShape;
  const int32_t *cfg = static_cast<const int32_t *>(params[1]);
  g->k = cfg[0];
  g->s = cfg[1];
  g->dil = cfg[2];
  g->g = cfg[3];
  g->flip = cfg[4];
  if (g->k < 1 || g->k % 2 == 0 || g->s < 1 || g->dil < 1 || g->g < 1) return kBadConfig;
  if (g->flip && g->s != 1) return kBadConfig;
  g->b = shapes[0][0];
  g->h = shapes[2][ndims[2] - 2];
  g->w = shapes[2][ndims[2] - 1];
  g->pad = g->dil * (g->k / 2);
  g->ho = (g->h + g->s - 1) / g->s;
  g->wo = (g->w + g->s - 1) / g->s;
  const int64_t gc = shapes[wide][1];
  if (gc % g->g != 0) return kBadShape;
  g->c = gc / g->g;
  if (shapes[cols][1] != g->g * g->kk() * g->c || shapes[cols][2] != g->ho ||
      shapes[cols][3] != g->wo || shapes[wide][2] != g->h || shapes[wide][3] != g->w)
    return kBadShape;
  return kOk;
}

// The output range [lo, hi) of one axis whose taps read inside the map, for tap offset
// `off` = a*dil - pad: lo*s + off >= 0 and (hi-1)*s + off < n.
inline void ValidRange(int64_t off, int64_t n, int64_t s, int64_t n_out, int64_t *lo,
                       int64_t *hi) {
  *lo = off >= 0 ? 0 : (-off + s - 1) / s;
  *hi = n - off <= 0 ? 0 : (n - off + s - 1) / s;
  if (*hi > n_out) *hi = n_out;
  if (*lo > *hi) *lo = *hi;
}

}  // namespace

ACMIX_AOT_KERNEL(AcmixTapUnfold) {
  if (nparam != 4) return kBadArity;
  Geometry g;
  const int st = ReadGeometry(params, shapes, ndims, dtypes, 0, 3, &g);
  if (st != kOk) return st;
  const float *x = static_cast<const float *>(params[0]);
  float *cols = static_cast<float *>(params[3]);
  const int64_t kk = g.kk(), planes = g.b * g.g * kk * g.c, hw = g.h * g.w,
                howo = g.ho * g.wo;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t ch = p % g.c, t = (p / g.c) % kk, bg = p / (g.c * kk);  // bg = b*G + g
    const int64_t oy = g.OffsetY(t), ox = g.OffsetX(t);
    const float *src = x + (bg * g.c + ch) * hw;
    float *dst = cols + p * howo;
    int64_t y0, y1, x0, x1;
    ValidRange(oy, g.h, g.s, g.ho, &y0, &y1);
    ValidRange(ox, g.w, g.s, g.wo, &x0, &x1);
    std::memset(dst, 0, sizeof(float) * howo);
    for (int64_t yo = y0; yo < y1; ++yo) {
      const float *row = src + (yo * g.s + oy) * g.w + ox;
      float *out = dst + yo * g.wo;
      if (g.s == 1) {
        std::memcpy(out + x0, row + x0, sizeof(float) * (x1 - x0));
      } else {
        for (int64_t xo = x0; xo < x1; ++xo) out[xo] = row[xo * g.s];
      }
    }
  }
  return kOk;
}

ACMIX_AOT_KERNEL(AcmixTapFold) {
  if (nparam != 4) return kBadArity;
  Geometry g;
  const int st = ReadGeometry(params, shapes, ndims, dtypes, 3, 0, &g);
  if (st != kOk) return st;
  const float *cols = static_cast<const float *>(params[0]);
  float *x = static_cast<float *>(params[3]);
  const int64_t kk = g.kk(), planes = g.b * g.g * g.c, hw = g.h * g.w, howo = g.ho * g.wo;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t ch = p % g.c, bg = p / g.c;
    float *dst = x + p * hw;
    std::memset(dst, 0, sizeof(float) * hw);
    for (int64_t t = 0; t < kk; ++t) {
      const int64_t oy = g.OffsetY(t), ox = g.OffsetX(t);
      const float *src = cols + ((bg * kk + t) * g.c + ch) * howo;
      int64_t y0, y1, x0, x1;
      ValidRange(oy, g.h, g.s, g.ho, &y0, &y1);
      ValidRange(ox, g.w, g.s, g.wo, &x0, &x1);
      for (int64_t yo = y0; yo < y1; ++yo) {
        const float *in = src + yo * g.wo;
        float *row = dst + (yo * g.s + oy) * g.w + ox;
        if (g.s == 1) {
#pragma omp simd
          for (int64_t xo = x0; xo < x1; ++xo) row[xo] += in[xo];
        } else {
          for (int64_t xo = x0; xo < x1; ++xo) row[xo * g.s] += in[xo];
        }
      }
    }
  }
  return kOk;
}
