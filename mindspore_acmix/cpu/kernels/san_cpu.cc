// SAN's neighbourhood operators (hszhao/SAN lib/sa, the *_refpad CUDA kernels) as MindSpore
// AOT kernels (CPU). Semantics: mindspore_acmix/ops/san.py.
//
// Query (y, x) of the Ho x Wo grid sits at input pixel (y*s, x*s); window position
// j = a*k + b reads the reflection-padded map at (y*s + a*dil, x*s + b*dil), the padding being
// pad = dil*(k-1)/2 (torch ReflectionPad2d: the edge is not repeated). Every task works on
// one (n, c) channel with one thread-local padded copy of it: nothing is k*k times a
// feature map except the outputs that are so by definition (windows, subtraction2) and
// SAN's own attention weights w.
//
// SanWindowsFwd(x1, x2, cfg) -> out (N, C, k*k, Ho*Wo)
//     mode 0: out = window_j(x2)                 (the patchwise SAM's unfolded keys)
//     mode 1: out = x1[centre] - window_j(x2)    (SAN's subtraction2; subtraction(x) = (x, x))
// SanWindowsBwd(x1, x2, cfg, dout) -> (dx1, dx2), shaped like x1 and x2
// SanAggregationFwd(x, w, cfg) -> out (N, C, Ho, Wo),
//     out[n, c, o] = sum_j w[n, c % Cw, j, o] * window_j(x[n, c])[o]
// SanAggregationBwd(x, w, cfg, dout) -> (dx, dw)
// cfg is an int32 tensor [kernel_size, stride, dilation, mode] (mode only read by Windows).
//
// Entry points follow MindSpore's CPU AOT convention (ACMIX_AOT_KERNEL, sliding_window.h).
#include <cstdint>
#include <cstring>
#include <vector>

#include "sliding_window.h"

namespace {

namespace sw = sliding_window;

struct Geometry {
  int64_t n, c, h, w, k, s, dil, pad, ho, wo, hp, wp, mode;
  int64_t hw() const { return h * w; }
  int64_t howo() const { return ho * wo; }
  int64_t hpwp() const { return hp * wp; }
  int64_t kk() const { return k * k; }
  // offset of window position j in a padded map, relative to the query grid's origin
  int64_t Offset(int64_t j) const { return (j / k) * dil * wp + (j % k) * dil; }
  sw::Plane plane() const { return {h, w, pad, s, ho, wo, hp, wp}; }
};

// Geometry of input `x` (4-D float32) and the int32 config at params[cfg_index].
int ReadGeometry(void **params, int *ndims, int64_t **shapes, const char **dtypes, int x,
                 int cfg_index, Geometry *g) {
  if (!IsFloat32(dtypes[x]) || ndims[x] != 4) return kBadShape;
  if (std::strcmp(dtypes[cfg_index], "int32") != 0 || ndims[cfg_index] != 1 ||
      shapes[cfg_index][0] != 4)
    return kBadConfig;
  const int32_t *cfg = static_cast<const int32_t *>(params[cfg_index]);
  g->k = cfg[0];
  g->s = cfg[1];
  g->dil = cfg[2];
  g->mode = cfg[3];
  if (g->k < 1 || g->k % 2 == 0 || g->s < 1 || g->dil < 1 || g->mode < 0 || g->mode > 1)
    return kBadConfig;
  g->n = shapes[x][0];
  g->c = shapes[x][1];
  g->h = shapes[x][2];
  g->w = shapes[x][3];
  return sw::CompleteGeometry(g);
}

bool SameShape(int a, int b, int *ndims, int64_t **shapes) {
  if (ndims[a] != ndims[b]) return false;
  for (int i = 0; i < ndims[a]; ++i)
    if (shapes[a][i] != shapes[b][i]) return false;
  return true;
}

struct Channel {  // thread-local buffers of one channel
  sw::Plane plane;
  std::vector<float> padded, grad;
  std::vector<int64_t> col_src;
  explicit Channel(const Geometry &g)
      : plane(g.plane()), padded(g.hpwp()), grad(g.hpwp()), col_src(g.wp) {
    for (int64_t x = 0; x < g.wp; ++x) col_src[x] = sw::Reflect(x - g.pad, g.w);
  }
  const float *Pad(const float *src) {
    sw::Pad(src, padded.data(), plane, col_src.data());
    return padded.data();
  }
  float *ZeroGrad() {
    std::memset(grad.data(), 0, sizeof(float) * grad.size());
    return grad.data();
  }
  void Fold(float *dst) const { sw::Fold(grad.data(), dst, plane, col_src.data()); }
};

// ---- windows / subtraction2 -------------------------------------------------------------

void WindowsChannel(const float *x1, const float *x2, const Geometry &g, Channel *ch,
                    float *out) {
  const float *xp = ch->Pad(x2);
  for (int64_t j = 0; j < g.kk(); ++j) {
    const float *base = xp + g.Offset(j);
    float *oj = out + j * g.howo();
    for (int64_t y = 0; y < g.ho; ++y) {
      const float *br = base + y * g.s * g.wp;
      float *orow = oj + y * g.wo;
      if (g.mode == 0) {
        for (int64_t x = 0; x < g.wo; ++x) orow[x] = br[x * g.s];
      } else {
        const float *cr = x1 + y * g.s * g.w;
        for (int64_t x = 0; x < g.wo; ++x) orow[x] = cr[x * g.s] - br[x * g.s];
      }
    }
  }
}

void WindowsBackwardChannel(const float *dout, const Geometry &g, Channel *ch, float *dx1,
                            float *dx2) {
  float *dp = ch->ZeroGrad();
  for (int64_t j = 0; j < g.kk(); ++j)
    sw::Scatter(dout + j * g.howo(), nullptr, ch->plane, dp + g.Offset(j));
  ch->Fold(dx2);
  if (g.mode == 1) {  // out = x1[centre] - window(x2)
    for (int64_t i = 0; i < g.hw(); ++i) dx2[i] = -dx2[i];
    std::memset(dx1, 0, sizeof(float) * g.hw());
    for (int64_t j = 0; j < g.kk(); ++j) {
      const float *dj = dout + j * g.howo();
      for (int64_t y = 0; y < g.ho; ++y)
        for (int64_t x = 0; x < g.wo; ++x) dx1[y * g.s * g.w + x * g.s] += dj[y * g.wo + x];
    }
  }
}

// ---- aggregation ------------------------------------------------------------------------

// Weight channels Cw of w (N, Cw, k*k, Ho*Wo), checked against the geometry of x.
int WeightChannels(int *ndims, int64_t **shapes, const char **dtypes, const Geometry &g,
                   int64_t *cw) {
  if (!IsFloat32(dtypes[1]) || ndims[1] != 4) return kBadDtype;
  *cw = shapes[1][1];
  if (shapes[1][0] != g.n || *cw < 1 || g.c % *cw != 0 || shapes[1][2] != g.kk() ||
      shapes[1][3] != g.howo())
    return kBadShape;
  return kOk;
}

// Geometry of an aggregation's input x (params[0]) and the channel count of its weights.
int ReadAggregation(void **params, int *ndims, int64_t **shapes, const char **dtypes,
                    Geometry *g, int64_t *cw) {
  const int st = ReadGeometry(params, ndims, shapes, dtypes, 0, 2, g);
  return st != kOk ? st : WeightChannels(ndims, shapes, dtypes, *g, cw);
}

}  // namespace

ACMIX_AOT_KERNEL(SanWindowsFwd) {
  if (nparam != 4) return kBadArity;
  Geometry g;
  const int st = ReadGeometry(params, ndims, shapes, dtypes, 1, 2, &g);
  if (st != kOk) return st;
  if (!IsFloat32(dtypes[0]) || !SameShape(0, 1, ndims, shapes)) return kBadShape;
  const float *x1 = static_cast<const float *>(params[0]);
  const float *x2 = static_cast<const float *>(params[1]);
  float *out = static_cast<float *>(params[3]);
  ParallelSlices<Channel>(g.n * g.c, g, [&](int64_t i, Channel *ch) {
    WindowsChannel(x1 + i * g.hw(), x2 + i * g.hw(), g, ch, out + i * g.kk() * g.howo());
  });
  return kOk;
}

ACMIX_AOT_KERNEL(SanWindowsBwd) {
  if (nparam != 6) return kBadArity;
  Geometry g;
  const int st = ReadGeometry(params, ndims, shapes, dtypes, 1, 2, &g);
  if (st != kOk) return st;
  if (!IsFloat32(dtypes[3]) || ndims[3] != 4 || shapes[3][2] != g.kk() ||
      shapes[3][3] != g.howo())
    return kBadShape;
  const float *dout = static_cast<const float *>(params[3]);
  float *dx1 = static_cast<float *>(params[4]);
  float *dx2 = static_cast<float *>(params[5]);
  if (g.mode == 0) std::memset(dx1, 0, sizeof(float) * g.n * g.c * g.hw());
  ParallelSlices<Channel>(g.n * g.c, g, [&](int64_t i, Channel *ch) {
    WindowsBackwardChannel(dout + i * g.kk() * g.howo(), g, ch, dx1 + i * g.hw(),
                           dx2 + i * g.hw());
  });
  return kOk;
}

ACMIX_AOT_KERNEL(SanAggregationFwd) {
  if (nparam != 4) return kBadArity;
  Geometry g;
  int64_t cw;
  const int st = ReadAggregation(params, ndims, shapes, dtypes, &g, &cw);
  if (st != kOk) return st;
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  float *out = static_cast<float *>(params[3]);
  const int64_t wsize = g.kk() * g.howo();
  ParallelSlices<Channel>(g.n * g.c, g, [&](int64_t i, Channel *ch) {
    const int64_t n = i / g.c, c = i % g.c;
    const float *wc = w + (n * cw + c % cw) * wsize;
    const float *xp = ch->Pad(x + i * g.hw());
    float *oc = out + i * g.howo();
    std::memset(oc, 0, sizeof(float) * g.howo());
    for (int64_t j = 0; j < g.kk(); ++j)
      sw::MulAdd(wc + j * g.howo(), xp + g.Offset(j), ch->plane, oc);
  });
  return kOk;
}

ACMIX_AOT_KERNEL(SanAggregationBwd) {
  if (nparam != 6) return kBadArity;
  Geometry g;
  int64_t cw;
  const int st = ReadAggregation(params, ndims, shapes, dtypes, &g, &cw);
  if (st != kOk) return st;
  if (!IsFloat32(dtypes[3]) || ndims[3] != 4 || shapes[3][1] != g.c ||
      shapes[3][2] != g.ho || shapes[3][3] != g.wo)
    return kBadShape;
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  const float *dout = static_cast<const float *>(params[3]);
  float *dx = static_cast<float *>(params[4]);
  float *dw = static_cast<float *>(params[5]);
  const int64_t wsize = g.kk() * g.howo(), share = g.c / cw;
  // dx: each channel scatters its weighted output gradient over its windows
  ParallelSlices<Channel>(g.n * g.c, g, [&](int64_t i, Channel *ch) {
    const int64_t n = i / g.c, c = i % g.c;
    const float *wc = w + (n * cw + c % cw) * wsize;
    const float *dc = dout + i * g.howo();
    float *dp = ch->ZeroGrad();
    for (int64_t j = 0; j < g.kk(); ++j)
      sw::Scatter(wc + j * g.howo(), dc, ch->plane, dp + g.Offset(j));
    ch->Fold(dx + i * g.hw());
  });
  // dw: each weight channel gathers the channels that share it (c = t*Cw + cw_index)
  ParallelSlices<Channel>(g.n * cw, g, [&](int64_t i, Channel *ch) {
    const int64_t n = i / cw, gi = i % cw;
    float *dwc = dw + i * wsize;
    std::memset(dwc, 0, sizeof(float) * wsize);
    for (int64_t t = 0; t < share; ++t) {
      const int64_t slice = n * g.c + t * cw + gi;
      const float *xp = ch->Pad(x + slice * g.hw());
      const float *dc = dout + slice * g.howo();
      for (int64_t j = 0; j < g.kk(); ++j)
        sw::MulAdd(dc, xp + g.Offset(j), ch->plane, dwc + j * g.howo());
    }
  });
  return kOk;
}
