/* bench_sieve.c — one single-threaded sieve job per process, for scripts/bench.sh.
 *
 *   bench_sieve count LO HI     prints π-count of [LO, HI]
 *   bench_sieve nth K           prints the K-th prime
 *   bench_sieve pi X [THREADS]  prints π(X) by the plan (pi.h; Gourdon, or DR with
 *                               BENCH_PI_ALGO=dr), its chunks run on THREADS threads (default 1)
 *                               claiming them in index order
 * then, on stderr, the wall time of the job and the peak RSS of the process. The script times
 * whole processes (like it times primesieve), so the table build is included, as it is for
 * primesieve's generation of its sieving primes. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "primed/pi.h"
#include "primed/sieve.h"

static uint64_t arg_u64(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) {
        fprintf(stderr, "bench_sieve: bad number %s\n", s);
        exit(2);
    }
    return v;
}

/* The chunks of one plan on n threads, claimed through an atomic cursor like pool_parallel. */
struct par {
    pi_plan *plan;
    atomic_uint_fast64_t cursor;
    atomic_int err;
};

static void *par_worker(void *arg)
{
    struct par *pa = arg;
    uint64_t n = pi_plan_chunks(pa->plan), i;
    while ((i = atomic_fetch_add(&pa->cursor, 1)) < n) {
        int rc = pi_run_chunk(pa->plan, i, NULL);
        if (rc) atomic_store(&pa->err, rc);
    }
    return NULL;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* BENCH_PI_SCHEDULE=1: the chunks one after another on this thread, each timed by its CPU
 * clock; prints the total and the makespan of `threads` workers claiming them in index order
 * (what pool_parallel does), i.e. the speed-up the schedule allows on an idle machine. */
static int bench_pi_schedule(pi_plan *plan, unsigned threads, bool verbose)
{
    uint64_t n = pi_plan_chunks(plan);
    double busy[64] = {0}, total = 0;
    if (threads > 64) threads = 64;
    /* BENCH_PI_CHUNKS=A-B: only chunks A … B-1 (to time one part of a huge plan; no result) */
    const char *only = getenv("BENCH_PI_CHUNKS");
    uint64_t from = 0, to = n;
    if (only && sscanf(only, "%" SCNu64 "-%" SCNu64, &from, &to) != 2) from = 0, to = n;
    for (uint64_t i = from; i < to && i < n; i++) {
        double t0 = cpu_now();
        int rc = pi_run_chunk(plan, i, NULL);
        if (rc) return rc;
        double dt = cpu_now() - t0;
        if (verbose || only)
            fprintf(stderr, "chunk %" PRIu64 " %s %.6f\n", i, pi_chunk_kind(plan, i), dt);
        unsigned w = 0; /* the worker free first claims the next chunk */
        for (unsigned k = 1; k < threads; k++)
            if (busy[k] < busy[w]) w = k;
        busy[w] += dt;
        total += dt;
    }
    double span = 0;
    for (unsigned k = 0; k < threads; k++)
        span = busy[k] > span ? busy[k] : span;
    fprintf(stderr, "chunks %" PRIu64 " cpu_total %.3f makespan_%u %.3f speedup %.2f\n", n, total,
            threads, span, total / span);
    return 0;
}

static int bench_pi(uint64_t x, unsigned threads, uint64_t *out)
{
    /* BENCH_PI_ALPHA, BENCH_PI_ALPHA_Z, BENCH_PI_SEGMENT: tune the plan without rebuilding;
     * BENCH_PI_ALGO=dr: Deléglise–Rivat instead of Gourdon */
    const char *al = getenv("BENCH_PI_ALPHA"), *sg = getenv("BENCH_PI_SEGMENT");
    const char *az = getenv("BENCH_PI_ALPHA_Z"), *algo = getenv("BENCH_PI_ALGO");
    struct pi_opts o = {.threads = threads,
                        .alpha = al ? atof(al) : 0,
                        .segment = sg ? arg_u64(sg) : 0,
                        .algo = algo && strcmp(algo, "dr") == 0 ? PI_ALGO_DR : PI_ALGO_GOURDON,
                        .alpha_z = az ? atof(az) : 0};
    struct par pa = {.cursor = 0, .err = 0};
    double t_plan = cpu_now();
    int rc = pi_plan_create(x, &o, &pa.plan, NULL);
    if (rc) return rc;
    t_plan = cpu_now() - t_plan;
    const char *sch = getenv("BENCH_PI_SCHEDULE");
    if (sch && *sch && strcmp(sch, "0") != 0) {
        /* The shared sieving-prime table is built once per process, by the first sieve call (P2's
         * or A + C2's first chunk): build it first, so that no chunk's time carries it. */
        sieve_ctx *warm = sieve_ctx_create(0);
        uint64_t unused = 0;
        if (warm) sieve_count(warm, 1000000000, 1000001000, &unused, NULL);
        sieve_ctx_destroy(warm);
        fprintf(stderr, "plan_cpu %.6f\n", t_plan);
        rc = bench_pi_schedule(pa.plan, threads, strcmp(sch, "2") == 0);
        if (rc == 0 && getenv("BENCH_PI_CHUNKS")) rc = -EINVAL; /* a part: no answer */
        if (rc == 0) rc = pi_plan_result(pa.plan, out);
        pi_plan_destroy(pa.plan);
        return rc;
    }
    pthread_t th[64];
    unsigned started = 0;
    for (; started + 1 < threads && started < 64; started++)
        if (pthread_create(&th[started], NULL, par_worker, &pa) != 0) break;
    par_worker(&pa);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    rc = atomic_load(&pa.err);
    if (rc == 0) rc = pi_plan_result(pa.plan, out);
    struct pi_mem_stats ms;
    pi_mem_stats_get(&ms);
    fprintf(stderr, "pi_mem_peak_bytes %" PRIu64 "\n", ms.peak);
    pi_plan_destroy(pa.plan);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_sieve count LO HI | nth K | pi X [THREADS]\n");
        return 2;
    }
    /* BENCH_SEGMENT_BYTES: tune the segment size without rebuilding */
    const char *seg = getenv("BENCH_SEGMENT_BYTES");
    sieve_ctx *ctx = sieve_ctx_create(seg ? (size_t)arg_u64(seg) : 0);
    if (!ctx) return 1;
    /* BENCH_POOL_BYTES: the big primes' bucket pool (sieve_ctx_set_bucket_pool) */
    const char *pool = getenv("BENCH_POOL_BYTES");
    if (pool) sieve_ctx_set_bucket_pool(ctx, (size_t)arg_u64(pool));
    /* BENCH_NO_HYBRID=1: always the full sieve (to re-measure the hybrid's break-even) */
    const char *nh = getenv("BENCH_NO_HYBRID");
    if (nh && *nh && strcmp(nh, "0") != 0) sieve_ctx_set_hybrid(ctx, false);
    /* BENCH_ISA=portable|avx2|avx512|…: force a kernel variant (sieve_isa_select) */
    const char *isa = getenv("BENCH_ISA");
    if (isa && *isa && sieve_isa_select(isa) != 0) {
        fprintf(stderr, "bench_sieve: variant %s not supported here\n", isa);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t r = 0;
    int rc;
    if (strcmp(argv[1], "count") == 0 && argc == 4)
        rc = sieve_count(ctx, arg_u64(argv[2]), arg_u64(argv[3]), &r, NULL);
    else if (strcmp(argv[1], "nth") == 0)
        rc = sieve_nth(ctx, arg_u64(argv[2]), &r, NULL);
    else if (strcmp(argv[1], "pi") == 0)
        rc = bench_pi(arg_u64(argv[2]), argc > 3 ? (unsigned)arg_u64(argv[3]) : 1, &r);
    else
        rc = -EINVAL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) {
        fprintf(stderr, "bench_sieve: error %d\n", rc);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%" PRIu64 "\n", r);
    fprintf(stderr, "seconds %.3f cpu %.3f maxrss_kb %ld isa %s\n",
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
            ru.ru_maxrss, sieve_isa_name());
    sieve_ctx_destroy(ctx);
    sieve_shutdown();
    return 0;
}
