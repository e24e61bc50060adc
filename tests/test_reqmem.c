/* test_reqmem.c — the request memory budget and its per-client shares: the limits hold against
 * a model under random charges and releases from many clients (tags chosen to collide in the
 * table), the table empties when every client gives its bytes back, and refusals say why. */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/reqmem.h"

START_TEST(share_and_budget_refuse_with_their_reason)
{
    struct reqmem m;
    reqmem_init(&m, 1000);
    ck_assert_int_eq(reqmem_set_shares(&m, 400, 8), 0);
    ck_assert_int_eq(reqmem_charge_client(&m, 7, 300), REQMEM_OK);
    ck_assert_int_eq(reqmem_charge_client(&m, 7, 101), REQMEM_SHARE); /* 401 > 400 */
    ck_assert_int_eq(reqmem_charge_client(&m, 7, 100), REQMEM_OK);    /* exactly the share */
    ck_assert_int_eq(reqmem_charge_client(&m, 8, 400), REQMEM_OK);
    ck_assert_int_eq(reqmem_charge_client(&m, 9, 201), REQMEM_BUDGET); /* 1001 > 1000 */
    ck_assert_uint_eq(reqmem_client_bytes(&m, 9), 0);                  /* nothing charged */
    ck_assert_int_eq(reqmem_charge_client(&m, 9, 200), REQMEM_OK);
    ck_assert_int_eq(reqmem_charge_client(&m, 0, 1), REQMEM_BUDGET); /* tag 0: the budget only */
    ck_assert_uint_eq(atomic_load(&m.share_rejections), 1);
    ck_assert_uint_eq(atomic_load(&m.rejections), 2);
    reqmem_release_client(&m, 7, 400);
    reqmem_release_client(&m, 8, 400);
    reqmem_release_client(&m, 9, 200);
    ck_assert_uint_eq(atomic_load(&m.used), 0);
    ck_assert_uint_eq(m.nclients, 0);
    reqmem_fini(&m);
}
END_TEST

/* Random charges and releases by 40 clients in a table of 41 slots (nearly full: long probe
 * clusters, so every deletion shifts entries back): the per-client bytes, the total and the client
 * count always equal the model's, a charge is refused exactly when the model says so, and why,
 * and the table ends empty. */
START_TEST(random_charges_agree_with_a_model)
{
    enum { CLIENTS = 40, STEPS = 200000 };
    struct reqmem m;
    const uint64_t limit = 50000, share = 4000;
    reqmem_init(&m, limit);
    ck_assert_int_eq(reqmem_set_shares(&m, share, 20), 0);
    uint64_t tags[CLIENTS], held[CLIENTS] = {0}, total = 0;
    uint64_t seed = 0x5eed1234abcdull;
    for (int i = 0; i < CLIENTS; i++)
        tags[i] = xorshift64(&seed) | 1;
    unsigned live = 0;
    for (int step = 0; step < STEPS; step++) {
        int c = (int)(xorshift64(&seed) % CLIENTS);
        uint64_t n = 1 + xorshift64(&seed) % 1500;
        if (xorshift64(&seed) % 2) {
            enum reqmem_refusal want = total + n > limit     ? REQMEM_BUDGET
                                       : held[c] + n > share ? REQMEM_SHARE
                                                             : REQMEM_OK;
            enum reqmem_refusal got = reqmem_charge_client(&m, tags[c], n);
            ck_assert_msg(got == want, "step %d: charge %" PRIu64 " to %d: got %d want %d", step, n,
                          c, got, want);
            if (got == REQMEM_OK) {
                live += held[c] == 0;
                held[c] += n;
                total += n;
            }
        } else if (held[c]) {
            uint64_t k = n < held[c] ? n : held[c];
            reqmem_release_client(&m, tags[c], k);
            held[c] -= k;
            total -= k;
            live -= held[c] == 0;
        }
        ck_assert_uint_eq(reqmem_client_bytes(&m, tags[c]), held[c]);
        ck_assert_uint_eq(atomic_load(&m.used), total);
        ck_assert_uint_eq(m.nclients, live);
    }
    for (int c = 0; c < CLIENTS; c++) {
        for (int k = 0; k < CLIENTS; k++)
            ck_assert_uint_eq(reqmem_client_bytes(&m, tags[k]), held[k]);
        reqmem_release_client(&m, tags[c], held[c]);
        held[c] = 0;
    }
    ck_assert_uint_eq(atomic_load(&m.used), 0);
    ck_assert_uint_eq(m.nclients, 0);
    for (unsigned i = 0; i < m.nslots; i++)
        ck_assert_uint_eq(m.clients[i].tag, 0);
    reqmem_fini(&m);
}
END_TEST

/* Threads charging and releasing their own clients at once: the totals come back to 0. */
struct hammer {
    struct reqmem *m;
    uint64_t tag;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 20000; i++) {
        if (reqmem_charge_client(h->m, h->tag, 100) == REQMEM_OK)
            reqmem_release_client(h->m, h->tag, 100);
    }
    return NULL;
}

START_TEST(concurrent_clients_leave_nothing_behind)
{
    struct reqmem m;
    reqmem_init(&m, 1 << 20);
    ck_assert_int_eq(reqmem_set_shares(&m, 250, 4), 0);
    pthread_t t[4];
    struct hammer h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){&m, (uint64_t)i + 1};
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(atomic_load(&m.used), 0);
    ck_assert_uint_eq(m.nclients, 0);
    reqmem_fini(&m);
}
END_TEST

static Suite *reqmem_suite(void)
{
    Suite *s = suite_create("reqmem");
    TCase *tc = tcase_create("reqmem");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, share_and_budget_refuse_with_their_reason);
    tcase_add_test(tc, random_charges_agree_with_a_model);
    tcase_add_test(tc, concurrent_clients_leave_nothing_behind);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(reqmem_suite)
