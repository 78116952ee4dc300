/*
 * OpenBLAS CPU core selection (DESIGN.md, "CPU kernels"). Debian's OpenBLAS
 * 0.3.21 does not recognise recent Intel cores and falls back to its generic
 * "Prescott" kernels, ~6x slower sgemm than the AVX-512 ones on the same CPU.
 * OpenBLAS reads OPENBLAS_CORETYPE only when it initialises, so the caller
 * must re-execute (or dlopen OpenBLAS) after setting it.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_int.h"

/* Cores older than AVX2: on an AVX2 / AVX-512 CPU these mean a fallback. */
static const char *pre_avx2[] = {
    "Prescott", "Core2",      "Penryn",     "Dunnington",  "Nehalem",     "Atom",
    "Katmai",   "Coppermine", "Northwood",  "Banias",      "Sandybridge", "Barcelona",
    "Bobcat",   "Bulldozer",  "Piledriver", "Steamroller", "Excavator",   "Opteron"};

const char *sl_engine_blas_core_preferred(void)
{
        const char *core = openblas_get_corename();
        int generic = 0;

        if (getenv("OPENBLAS_CORETYPE") || !core)
                return NULL; /* the user's choice is always respected */
        for (size_t i = 0; i < sizeof(pre_avx2) / sizeof(*pre_avx2); i++)
                if (!strcasecmp(core, pre_avx2[i]))
                        generic = 1;
        if (!generic)
                return NULL;
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
                return "SkylakeX";
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
                return "Haswell";
        return NULL;
}

bool sl_cpu_avx512f(void)
{
        static int ok = -1;
        if (ok < 0) {
                __builtin_cpu_init();
                ok = __builtin_cpu_supports("avx512f");
        }
        return ok;
}

void sl_engine_blas_set_threads(int n)
{
        openblas_set_num_threads(n < 1 ? 1 : n);
}
