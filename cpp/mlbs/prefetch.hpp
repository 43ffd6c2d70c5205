// MLBS_PREFETCH(p): a hint to bring the cache line holding p closer (no effect on results).
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define MLBS_PREFETCH(p) __builtin_prefetch(p)
#else
#define MLBS_PREFETCH(p) ((void)0)
#endif
