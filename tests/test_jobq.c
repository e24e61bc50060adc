/* test_jobq.c — the pool's job queue (src/jobq.c) against a model: random interleavings of
 * pushes, pops, jobs starting, parking, resuming and finishing, chunk helpers and deadline
 * expiry, for many clients under caps 0–3. The model is the plain definition: per-client FIFO
 * arrays and busy counts, a client eligible when it has jobs queued and fewer than `cap` busy.
 * Checked at every step: a pop returns a job exactly when some client is eligible, the head of
 * its client's FIFO, and no eligible client waits more than (clients − 1) pops (round-robin);
 * push and jobq_busy report eligibility changes exactly; lengths and skip counts agree; every job
 * is popped or expired at most once and released exactly once (ASan: no record leaks). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/jobq.h"
#include "check_main.h"

/* Check's assertions cost a pipe write each in fork mode; the model runs ~10^6 checks. */
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                         \
    } while (0)
#define EXPECT_MSG(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

enum { NC = 7, MAXJ = 3000, STEPS = 20000 };

enum mstate { M_QUEUED = 1, M_RUNNING, M_PARKED, M_DONE };

struct mjob {
    struct pool_job job; /* first */
    int c;               /* model client index */
    enum mstate st;
    int helpers; /* chunk helpers while running */
};

struct model {
    unsigned cap;
    uint64_t tag[NC]; /* tag[0] = 0: untagged */
    int fifo[NC][MAXJ];
    int head[NC], len[NC]; /* fifo[c][head … head+len) (no wrap: at most MAXJ pushes a run) */
    unsigned busy[NC];
    int wait[NC]; /* pops that served another client while this one was eligible */
    uint64_t skips;
    unsigned qlen;
};

static struct mjob jobs[MAXJ];
static struct model m;

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The model's client of a job: with no cap every job is in one FIFO (client index 0). */
static int key(int c)
{
    return m.cap ? c : 0;
}

static bool capped(int k)
{
    return m.cap != 0 && k != 0 && m.busy[k] >= m.cap;
}

static bool eligible(int k)
{
    return m.len[k] > 0 && !capped(k);
}

static void fifo_remove(int k, int id)
{
    int *f = &m.fifo[k][m.head[k]];
    for (int i = 0; i < m.len[k]; i++) {
        if (f[i] != id) continue;
        memmove(&f[i], &f[i + 1], (size_t)(m.len[k] - i - 1) * sizeof *f);
        m.len[k]--;
        return;
    }
    ck_abort_msg("job %d not in the model's FIFO %d", id, k);
}

/* A worker starts (+1) or stops (-1) for job id's client: jobq_busy must report exactly a
 * change from not eligible to eligible. */
static void busy(struct jobq *q, int id, int delta)
{
    int k = key(jobs[id].c);
    bool before = eligible(k);
    m.busy[k] = delta > 0 ? m.busy[k] + 1 : m.busy[k] - 1;
    bool became = !before && eligible(k);
    EXPECT(jobq_busy(q, jobs[id].job.qc, delta) == became);
    if (!eligible(k)) m.wait[k] = 0;
    EXPECT(jobq_at_cap(q, jobs[id].job.qc) == capped(k));
}

static void check_pop(struct jobq *q)
{
    bool any = false;
    unsigned blocked = 0;
    for (int k = 0; k < NC; k++) {
        any |= eligible(k);
        blocked += m.len[k] > 0 && capped(k);
    }
    struct pool_job *j = jobq_pop(q);
    EXPECT((j != NULL) == any);
    if (!j) return;
    int id = (int)((struct mjob *)j - jobs);
    int k = key(jobs[id].c);
    EXPECT(jobs[id].st == M_QUEUED);
    EXPECT_MSG(m.len[k] > 0 && m.fifo[k][m.head[k]] == id,
               "popped job %d is not the head of its client's FIFO", id);
    m.skips += blocked;
    for (int o = 0; o < NC; o++) {
        if (o == k || !eligible(o)) continue;
        EXPECT_MSG(++m.wait[o] < NC, "client %d eligible and passed over %d times", o, m.wait[o]);
    }
    m.wait[k] = 0;
    m.head[k]++;
    m.len[k]--;
    m.qlen--;
    jobs[id].st = M_RUNNING;
    busy(q, id, +1);
}

static void finish(struct jobq *q, int id)
{
    busy(q, id, -1);
    jobs[id].st = M_DONE;
    jobq_release(q, &jobs[id].job);
}

static void run_one(unsigned cap, uint64_t seed)
{
    memset(&m, 0, sizeof m);
    memset(jobs, 0, sizeof jobs);
    m.cap = cap;
    rng_state = seed;
    for (int c = 1; c < NC; c++)
        m.tag[c] = c < 3 ? (uint64_t)c : rnd() | 1; /* small tags and hashed-looking ones */
    struct jobq *q = jobq_create(4);                /* a tiny table: chains are exercised */
    EXPECT(q != NULL);
    jobq_set_cap(q, cap);
    int njobs = 0;
    uint64_t now = 1000;
    for (int step = 0; step < STEPS; step++) {
        unsigned op = (unsigned)(rnd() % 100);
        int id = njobs ? (int)(rnd() % (uint64_t)njobs) : 0;
        if (op < 30 && njobs < MAXJ) { /* submit */
            int c = (int)(rnd() % NC);
            /* One client floods: half of all jobs are client 1's. */
            if (rnd() % 2) c = 1;
            struct mjob *t = &jobs[njobs];
            t->c = c;
            t->job.client = m.tag[c];
            t->job.deadline_ns = rnd() % 4 == 0 ? now + rnd() % 500 : 0;
            atomic_init(&t->job.cancel, 0);
            int k = key(c);
            int r = jobq_push(q, &t->job);
            EXPECT(r >= 0);
            m.fifo[k][m.head[k] + m.len[k]++] = njobs;
            m.qlen++;
            t->st = M_QUEUED;
            EXPECT(r == eligible(k));
            njobs++;
        } else if (op < 55) {
            check_pop(q);
        } else if (op < 70) { /* a running job finishes */
            if (jobs[id].st == M_RUNNING && jobs[id].helpers == 0) finish(q, id);
        } else if (op < 76) { /* parks: busy drops, the record stays */
            if (jobs[id].st == M_RUNNING && jobs[id].helpers == 0) {
                busy(q, id, -1);
                jobs[id].st = M_PARKED;
            }
        } else if (op < 82) { /* resumed: runs again, whatever the cap */
            if (jobs[id].st == M_PARKED) {
                busy(q, id, +1);
                jobs[id].st = M_RUNNING;
            }
        } else if (op < 90) { /* an idle worker helps with a chunk if the client is under cap */
            if (jobs[id].st == M_RUNNING && !jobq_at_cap(q, jobs[id].job.qc)) {
                busy(q, id, +1);
                jobs[id].helpers++;
            }
        } else if (op < 96) { /* a helper leaves */
            if (jobs[id].st == M_RUNNING && jobs[id].helpers > 0) {
                busy(q, id, -1);
                jobs[id].helpers--;
            }
        } else { /* the watchdog: time passes, expired queued jobs are taken and run */
            now += rnd() % 200;
            uint64_t next = UINT64_MAX, want_next = UINT64_MAX;
            struct pool_job *x = jobq_take_expired(q, now, &next);
            for (; x; x = x->next) {
                int xid = (int)((struct mjob *)x - jobs);
                EXPECT(jobs[xid].st == M_QUEUED);
                EXPECT(x->deadline_ns && x->deadline_ns <= now);
                fifo_remove(key(jobs[xid].c), xid);
                m.qlen--;
                jobs[xid].st = M_DONE; /* run on the watchdog: no worker, released */
            }
            for (int k = 0; k < NC; k++) {
                for (int i = 0; i < m.len[k]; i++) {
                    uint64_t d = jobs[m.fifo[k][m.head[k] + i]].job.deadline_ns;
                    EXPECT(d == 0 || d > now);
                    if (d && d < want_next) want_next = d;
                }
                if (!eligible(k)) m.wait[k] = 0;
            }
            EXPECT(next == want_next);
            for (int i = 0; i < njobs; i++)
                if (jobs[i].st == M_DONE && jobs[i].job.qc) jobq_release(q, &jobs[i].job);
        }
        EXPECT(jobq_len(q) == m.qlen);
        EXPECT(jobq_skips(q) == m.skips);
    }
    /* Drain: helpers leave, parked jobs resume, everything queued runs; all released once. */
    for (int i = 0; i < njobs; i++) {
        while (jobs[i].helpers > 0) {
            busy(q, i, -1);
            jobs[i].helpers--;
        }
        if (jobs[i].st == M_PARKED) {
            busy(q, i, +1);
            jobs[i].st = M_RUNNING;
        }
        if (jobs[i].st == M_RUNNING) finish(q, i);
    }
    while (m.qlen > 0) {
        unsigned before = m.qlen;
        check_pop(q);
        EXPECT(m.qlen < before);
        for (int i = 0; i < njobs; i++)
            if (jobs[i].st == M_RUNNING) finish(q, i);
    }
    EXPECT(jobq_pop(q) == NULL);
    for (int i = 0; i < njobs; i++) {
        EXPECT(jobs[i].st == M_DONE);
        EXPECT(jobs[i].job.qc == NULL); /* released exactly once */
    }
    jobq_destroy(q);
}

START_TEST(random_interleavings_match_the_model_under_every_cap)
{
    for (unsigned cap = 0; cap <= 3; cap++)
        for (uint64_t seed = 1; seed <= 4; seed++)
            run_one(cap, seed * 0x9E3779B97F4A7C15ull + cap);
}
END_TEST

/* The audit's shape in the queue alone: 5000 of one capped client's jobs queued, one running;
 * another client's job is the very next pop. */
START_TEST(a_capped_client_with_thousands_queued_does_not_hide_another)
{
    enum { N = 5000 };
    static struct pool_job a[N];
    struct pool_job b = {.client = 0xB};
    struct jobq *q = jobq_create(N);
    jobq_set_cap(q, 1);
    for (int i = 0; i < N; i++) {
        a[i].client = 0xA;
        ck_assert_int_eq(jobq_push(q, &a[i]), 1); /* under the cap: nothing runs yet */
    }
    ck_assert_ptr_eq(jobq_pop(q), &a[0]);
    ck_assert(!jobq_busy(q, a[0].qc, +1)); /* A at its cap */
    ck_assert_ptr_null(jobq_pop(q));       /* nothing else may run */
    ck_assert_int_eq(jobq_push(q, &b), 1);
    ck_assert_ptr_eq(jobq_pop(q), &b);
    ck_assert_uint_eq(jobq_skips(q), 1); /* A, passed over once */
    ck_assert(!jobq_busy(q, b.qc, +1));
    ck_assert(!jobq_busy(q, b.qc, -1)); /* nothing of B's queued */
    jobq_release(q, &b);
    ck_assert(jobq_busy(q, a[0].qc, -1)); /* A eligible again */
    jobq_release(q, &a[0]);
    for (int i = 1; i < N; i++) {
        EXPECT(jobq_pop(q) == &a[i]); /* oldest first */
        jobq_busy(q, a[i].qc, +1);
        jobq_busy(q, a[i].qc, -1);
        jobq_release(q, &a[i]);
    }
    ck_assert_uint_eq(jobq_len(q), 0);
    jobq_destroy(q);
}
END_TEST

static Suite *jobq_suite(void)
{
    Suite *s = suite_create("jobq");
    TCase *tc = tcase_create("jobq");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, random_interleavings_match_the_model_under_every_cap);
    tcase_add_test(tc, a_capped_client_with_thousands_queued_does_not_hide_another);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(jobq_suite)
