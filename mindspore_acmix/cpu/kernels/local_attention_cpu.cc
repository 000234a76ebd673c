// Sliding-window local attention of the ResNet ACmix layer as MindSpore AOT kernels (CPU).
//
// The official formulation unfolds the padded keys and values into kernel_size**2 copies,
// which is what makes ACmix-ResNet slow and memory hungry. These kernels loop over the
// window offsets instead, one (batch * head) slice per OpenMP task, so the only buffers
// are one reflection-padded copy of the keys and values and the window's logits for that
// slice (kernel_size**2 maps of the output size), all thread-local.
//
// Semantics (see mindspore_acmix/ops/local_attention.py): q, kp, v are (BN, d, H, W);
// kp = k - pe (the query's own positional term q.pe_i is constant over the window and
// cancels in the softmax, so it is left out). Queries sit at (y*s, x*s); window position
// (a, b) of query (y, x) reads the padded maps at (y*s + a*dil, x*s + b*dil), padding being
// reflection by pad = dil*(K-1)/2 (torch ReflectionPad2d: the edge is not repeated).
//
//   logit_j = q . kp_j,  p = softmax_j(logit),  out = sum_j p_j v_j
//
// AcmixLocalAttnFwd(q, kp, v, cfg) -> (out (BN,d,Ho,Wo), lse (BN,Ho,Wo))
// AcmixLocalAttnBwd(q, kp, v, cfg, out, lse, dout) -> (dq, dkp, dv), each (BN,d,H,W)
// cfg is an int32 tensor [kernel_size, stride, dilation]. The forward keeps only the
// per-query log-sum-exp; the backward recomputes the probabilities from it.
//
// Entry points follow MindSpore's CPU AOT convention (ACMIX_AOT_KERNEL, sliding_window.h).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "sliding_window.h"

namespace {

namespace sw = sliding_window;

struct Geometry {
  int64_t bn, d, h, w, k, s, dil, pad, ho, wo, hp, wp;
  int64_t hw() const { return h * w; }
  int64_t howo() const { return ho * wo; }
  int64_t hpwp() const { return hp * wp; }
  sw::Plane plane() const { return {h, w, pad, s, ho, wo, hp, wp}; }
};

// exp(x) for x <= 0 (logits minus their maximum) written with arithmetic only, so that the
// softmax loops vectorise (glibc's vector expf is only declared under -ffast-math, which
// would also switch the whole process to flush-to-zero). Cody-Waite reduction
// x = n ln2 + r, |r| <= ln2/2, and a degree-6 polynomial: relative error about 2e-7.
inline float ExpNonPositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float n = std::nearbyint(x * 1.44269504088896341f);
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// Validates the four forward inputs (q, kp, v, cfg) and derives the geometry.
int ReadGeometry(void **params, int *ndims, int64_t **shapes, const char **dtypes,
                 Geometry *g) {
  for (int i = 0; i < 3; ++i) {
    if (!IsFloat32(dtypes[i])) return kBadDtype;
    if (ndims[i] != 4) return kBadShape;
    for (int j = 0; j < 4; ++j)
      if (shapes[i][j] != shapes[0][j]) return kBadShape;
  }
  if (std::strcmp(dtypes[3], "int32") != 0 || ndims[3] != 1 || shapes[3][0] != 3)
    return kBadConfig;
  const int32_t *cfg = static_cast<const int32_t *>(params[3]);
  g->k = cfg[0];
  g->s = cfg[1];
  g->dil = cfg[2];
  if (g->k < 1 || g->k % 2 == 0 || g->s < 1 || g->dil < 1) return kBadConfig;
  g->bn = shapes[0][0];
  g->d = shapes[0][1];
  g->h = shapes[0][2];
  g->w = shapes[0][3];
  return sw::CompleteGeometry(g);
}

// dst (d, hp, wp) = reflection padding of src (d, h, w).
void ReflectPad(const float *src, float *dst, const Geometry &g, const int64_t *col_src) {
  const sw::Plane plane = g.plane();
  for (int64_t c = 0; c < g.d; ++c)
    sw::Pad(src + c * g.hw(), dst + c * g.hpwp(), plane, col_src);
}

// dst (d, h, w) = adjoint of ReflectPad applied to src (d, hp, wp).
void ReflectFold(const float *src, float *dst, const Geometry &g, const int64_t *col_src) {
  const sw::Plane plane = g.plane();
  for (int64_t c = 0; c < g.d; ++c)
    sw::Fold(src + c * g.hpwp(), dst + c * g.hw(), plane, col_src);
}

// The queries of one slice, (d, ho, wo) contiguous: q itself for stride 1, else a copy.
const float *Queries(const float *q, const Geometry &g, std::vector<float> *buf) {
  if (g.s == 1) return q;
  buf->resize(g.d * g.howo());
  for (int64_t c = 0; c < g.d; ++c)
    for (int64_t y = 0; y < g.ho; ++y)
      for (int64_t x = 0; x < g.wo; ++x)
        (*buf)[(c * g.ho + y) * g.wo + x] = q[c * g.hw() + y * g.s * g.w + x * g.s];
  return buf->data();
}

// Offset of window position j inside a padded map, relative to the query grid's origin.
inline int64_t WindowOffset(int64_t j, const Geometry &g) {
  return (j / g.k) * g.dil * g.wp + (j % g.k) * g.dil;
}

// out[c * out_cs + i] += a[c * a_cs + i] * window_j(bp)[c][i] for every channel c, with a
// and out (ho, wo) grids. Channel stride 0 makes an operand shared by all channels:
//   a_cs = howo, out_cs = 0: out[i] += sum_c a[c][i] window_j[c][i]   (logits, dP)
//   a_cs = 0, out_cs = howo: out[c][i] += a[i] window_j[c][i]        (sum_j p_j v_j, dq)
void WindowMulAdd(const float *a, int64_t a_cs, const float *bp, int64_t j, const Geometry &g,
                  float *out, int64_t out_cs) {
  const int64_t off = WindowOffset(j, g);
  const sw::Plane plane = g.plane();
  for (int64_t c = 0; c < g.d; ++c)
    sw::MulAdd(a + c * a_cs, bp + c * g.hpwp() + off, plane, out + c * out_cs);
}

// window_j(dp)[c][i] += w[i] * a[c][i]  (scatter into a padded gradient).
void WindowScatter(const float *w, const float *a, int64_t j, const Geometry &g, float *dp) {
  const int64_t off = WindowOffset(j, g);
  const sw::Plane plane = g.plane();
  for (int64_t c = 0; c < g.d; ++c)
    sw::Scatter(w, a + c * g.howo(), plane, dp + c * g.hpwp() + off);
}

// logits (k*k, ho, wo) of one slice.
void Logits(const float *qs, const float *kpp, const Geometry &g, float *logits) {
  const int64_t kk = g.k * g.k;
  std::memset(logits, 0, sizeof(float) * kk * g.howo());
  for (int64_t j = 0; j < kk; ++j)
    WindowMulAdd(qs, g.howo(), kpp, j, g, logits + j * g.howo(), 0);
}

struct Workspace {
  std::vector<float> kpp, vpp, qs, probs, grad_logits, tmp, dkpp, dvpp, dqs;
  std::vector<int64_t> col_src;
  explicit Workspace(const Geometry &g) {
    kpp.resize(g.d * g.hpwp());
    vpp.resize(g.d * g.hpwp());
    probs.resize(g.k * g.k * g.howo());
    tmp.resize(2 * g.howo());
    col_src.resize(g.wp);
    for (int64_t x = 0; x < g.wp; ++x) col_src[x] = sw::Reflect(x - g.pad, g.w);
  }
};

void ForwardSlice(const float *q, const float *kp, const float *v, const Geometry &g,
                  Workspace *ws, float *out, float *lse) {
  const int64_t kk = g.k * g.k, n = g.howo();
  ReflectPad(kp, ws->kpp.data(), g, ws->col_src.data());
  ReflectPad(v, ws->vpp.data(), g, ws->col_src.data());
  const float *qs = Queries(q, g, &ws->qs);
  float *p = ws->probs.data();
  Logits(qs, ws->kpp.data(), g, p);
  float *mx = ws->tmp.data(), *sum = mx + n;
  std::memcpy(mx, p, sizeof(float) * n);
  for (int64_t j = 1; j < kk; ++j) {
    const float *pj = p + j * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) mx[i] = pj[i] > mx[i] ? pj[i] : mx[i];
  }
  std::memset(sum, 0, sizeof(float) * n);
  for (int64_t j = 0; j < kk; ++j) {
    float *pj = p + j * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      pj[i] = ExpNonPositive(pj[i] - mx[i]);
      sum[i] += pj[i];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    lse[i] = mx[i] + std::log(sum[i]);
    sum[i] = 1.0f / sum[i];
  }
  for (int64_t j = 0; j < kk; ++j) {
    float *pj = p + j * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) pj[i] *= sum[i];
  }
  std::memset(out, 0, sizeof(float) * g.d * n);
  for (int64_t j = 0; j < kk; ++j) WindowMulAdd(p + j * n, 0, ws->vpp.data(), j, g, out, n);
}

void BackwardSlice(const float *q, const float *kp, const float *v, const float *out,
                   const float *lse, const float *dout, const Geometry &g, Workspace *ws,
                   float *dq, float *dkp, float *dv) {
  const int64_t kk = g.k * g.k, n = g.howo();
  ReflectPad(kp, ws->kpp.data(), g, ws->col_src.data());
  ReflectPad(v, ws->vpp.data(), g, ws->col_src.data());
  const float *qs = Queries(q, g, &ws->qs);
  ws->grad_logits.resize(kk * n);
  ws->dkpp.assign(g.d * g.hpwp(), 0.0f);
  ws->dvpp.assign(g.d * g.hpwp(), 0.0f);
  ws->dqs.assign(g.d * n, 0.0f);
  float *p = ws->probs.data(), *dl = ws->grad_logits.data();

  // Probabilities from the saved log-sum-exp.
  Logits(qs, ws->kpp.data(), g, p);
  for (int64_t j = 0; j < kk; ++j) {
    float *pj = p + j * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) pj[i] = ExpNonPositive(pj[i] - lse[i]);
  }
  // sum_j p_j dP_j = dout . out, so the softmax backward needs no second pass over j.
  float *dot = ws->tmp.data();
  std::memset(dot, 0, sizeof(float) * n);
  for (int64_t c = 0; c < g.d; ++c) {
    const float *oc = out + c * n, *gc = dout + c * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dot[i] += oc[i] * gc[i];
  }
  std::memset(dl, 0, sizeof(float) * kk * n);
  for (int64_t j = 0; j < kk; ++j) {
    float *dlj = dl + j * n;
    const float *pj = p + j * n;
    WindowMulAdd(dout, n, ws->vpp.data(), j, g, dlj, 0);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dlj[i] = pj[i] * (dlj[i] - dot[i]);
    WindowMulAdd(dlj, 0, ws->kpp.data(), j, g, ws->dqs.data(), n);
    WindowScatter(dlj, qs, j, g, ws->dkpp.data());
    WindowScatter(pj, dout, j, g, ws->dvpp.data());
  }
  ReflectFold(ws->dkpp.data(), dkp, g, ws->col_src.data());
  ReflectFold(ws->dvpp.data(), dv, g, ws->col_src.data());
  if (g.s == 1) {
    std::memcpy(dq, ws->dqs.data(), sizeof(float) * g.d * n);
  } else {
    std::memset(dq, 0, sizeof(float) * g.d * g.hw());
    for (int64_t c = 0; c < g.d; ++c)
      for (int64_t y = 0; y < g.ho; ++y)
        for (int64_t x = 0; x < g.wo; ++x)
          dq[c * g.hw() + y * g.s * g.w + x * g.s] = ws->dqs[(c * g.ho + y) * g.wo + x];
  }
}

}  // namespace

ACMIX_AOT_KERNEL(AcmixLocalAttnFwd) {
  if (nparam != 6) return kBadArity;
  Geometry g;
  const int st = ReadGeometry(params, ndims, shapes, dtypes, &g);
  if (st != kOk) return st;
  const float *q = static_cast<const float *>(params[0]);
  const float *kp = static_cast<const float *>(params[1]);
  const float *v = static_cast<const float *>(params[2]);
  float *out = static_cast<float *>(params[4]);
  float *lse = static_cast<float *>(params[5]);
  const int64_t in_size = g.d * g.hw();
  ParallelSlices<Workspace>(g.bn, g, [&](int64_t b, Workspace *ws) {
    ForwardSlice(q + b * in_size, kp + b * in_size, v + b * in_size, g, ws,
                 out + b * g.d * g.howo(), lse + b * g.howo());
  });
  return kOk;
}

ACMIX_AOT_KERNEL(AcmixLocalAttnBwd) {
  if (nparam != 10) return kBadArity;
  Geometry g;
  const int st = ReadGeometry(params, ndims, shapes, dtypes, &g);
  if (st != kOk) return st;
  for (int i = 4; i < 10; ++i)
    if (!IsFloat32(dtypes[i])) return kBadDtype;
  const float *q = static_cast<const float *>(params[0]);
  const float *kp = static_cast<const float *>(params[1]);
  const float *v = static_cast<const float *>(params[2]);
  const float *out = static_cast<const float *>(params[4]);
  const float *lse = static_cast<const float *>(params[5]);
  const float *dout = static_cast<const float *>(params[6]);
  float *dq = static_cast<float *>(params[7]);
  float *dkp = static_cast<float *>(params[8]);
  float *dv = static_cast<float *>(params[9]);
  const int64_t in_size = g.d * g.hw(), out_size = g.d * g.howo();
  ParallelSlices<Workspace>(g.bn, g, [&](int64_t b, Workspace *ws) {
    BackwardSlice(q + b * in_size, kp + b * in_size, v + b * in_size, out + b * out_size,
                  lse + b * g.howo(), dout + b * out_size, g, ws, dq + b * in_size,
                  dkp + b * in_size, dv + b * in_size);
  });
  return kOk;
}
