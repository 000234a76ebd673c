// MindSpore's CPU AOT calling convention and what every kernel source here shares with it:
// status codes, dtype check, and the parallel loop over independent slices. cpu/build.py
// hashes this header with each source.
#ifndef MINDSPORE_ACMIX_AOT_KERNEL_H_
#define MINDSPORE_ACMIX_AOT_KERNEL_H_

#include <cstdint>
#include <cstring>

// MindSpore's CPU AOT convention (Custom(func_type="aot")): inputs then outputs in `params`;
// a non-zero return value is reported by MindSpore as a kernel failure. The stream and extra
// pointers are unused on CPU.
#define ACMIX_AOT_KERNEL(name)                                                       \
  extern "C" int name(int nparam, void **params, int *ndims, int64_t **shapes,       \
                      const char **dtypes, void * /*stream*/, void * /*extra*/)

enum AotStatus { kOk = 0, kBadArity = 1, kBadDtype = 2, kBadShape = 3, kBadConfig = 4 };

inline bool IsFloat32(const char *dtype) { return std::strcmp(dtype, "float32") == 0; }

// body(i, &scratch) for i in [0, count) on OpenMP threads, each with its own Scratch(g)
// (thread-local padded copies); dynamic scheduling, the slices being few and uneven.
template <class Scratch, class Geo, class Body>
void ParallelSlices(int64_t count, const Geo &g, Body body) {
#pragma omp parallel
  {
    Scratch scratch(g);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) body(i, &scratch);
  }
}

#endif  // MINDSPORE_ACMIX_AOT_KERNEL_H_
