/* test_ratelimit.c — token-bucket arithmetic, client keys (X-Forwarded-For from trusted and
 * untrusted peers, IPv6 /64, malformed headers) and the bounded client table (a million
 * distinct addresses keep memory flat; evictions and expirations are counted). */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/metrics.h"
#include "primed/router.h"
#include "primed/ratelimit.h"

#define S 1000000000ull /* ns per second */

/* ---- bucket arithmetic ---- */

/* The metric label index of the route serving path on the main listener. */
static size_t label_of(const char *path)
{
    const struct route *r = NULL;
    router_match(false, "GET", path, &r);
    ck_assert_ptr_nonnull(r);
    return router_label_index(r);
}

START_TEST(fresh_bucket_allows_the_burst_then_refuses)
{
    struct ratelimit_bucket b;
    struct ratelimit_verdict v;
    ratelimit_bucket_init(&b, 5, 100 * S);
    for (int i = 0; i < 5; i++) {
        ck_assert(ratelimit_bucket_take(&b, 100 * S, 1, 5, 1, &v));
        ck_assert_uint_eq(v.limit, 5);
        ck_assert_uint_eq(v.remaining, (uint64_t)(4 - i));
    }
    ck_assert(!ratelimit_bucket_take(&b, 100 * S, 1, 5, 1, &v));
    ck_assert_uint_eq(v.remaining, 0);
    ck_assert_uint_eq(v.retry_after_s, 1); /* one token per second */
    ck_assert_uint_eq(v.reset_s, 5);       /* five seconds to refill completely */
}
END_TEST

START_TEST(refill_is_rate_times_elapsed_and_capped_at_burst)
{
    struct ratelimit_bucket b;
    struct ratelimit_verdict v;
    ratelimit_bucket_init(&b, 10, 0);
    ck_assert(ratelimit_bucket_take(&b, 0, 4, 10, 10, &v)); /* empty it */
    ck_assert_uint_eq(v.remaining, 0);
    /* 4 tokens/s: after 0.5 s, 2 tokens. */
    ck_assert(!ratelimit_bucket_take(&b, S / 2, 4, 10, 3, &v));
    ck_assert(ratelimit_bucket_take(&b, S / 2, 4, 10, 2, &v));
    ck_assert_uint_eq(v.remaining, 0);
    /* 250 ms per token: 2.25 s later exactly 9 tokens. */
    ck_assert(ratelimit_bucket_take(&b, S / 2 + 9 * S / 4, 4, 10, 9, &v));
    ck_assert_uint_eq(v.remaining, 0);
    /* A long idle time refills to the burst, not beyond. */
    ck_assert(ratelimit_bucket_take(&b, 1000 * S, 4, 10, 1, &v));
    ck_assert_uint_eq(v.remaining, 9);
    ck_assert(!ratelimit_bucket_take(&b, 1000 * S, 4, 10, 10, &v));
    ck_assert_uint_eq(v.retry_after_s, 1); /* one token missing at 4/s: 0.25 s → 1 */
}
END_TEST

START_TEST(clock_going_backwards_refills_nothing)
{
    struct ratelimit_bucket b;
    struct ratelimit_verdict v;
    ratelimit_bucket_init(&b, 3, 50 * S);
    ck_assert(ratelimit_bucket_take(&b, 50 * S, 1, 3, 3, &v));
    /* The clock jumps back 40 s: no credit, and no wrap-around into a huge credit. */
    ck_assert(!ratelimit_bucket_take(&b, 10 * S, 1, 3, 1, &v));
    ck_assert_uint_eq(v.remaining, 0);
    /* From the new stamp, time counts normally again. */
    ck_assert(ratelimit_bucket_take(&b, 11 * S, 1, 3, 1, &v));
    ck_assert(!ratelimit_bucket_take(&b, 11 * S, 1, 3, 1, &v));
}
END_TEST

START_TEST(cost_above_burst_needs_a_full_bucket_and_leaves_debt)
{
    struct ratelimit_bucket b;
    struct ratelimit_verdict v;
    ratelimit_bucket_init(&b, 10, 0);
    ck_assert(ratelimit_bucket_take(&b, 0, 10, 10, 1, &v));
    /* Not full: refused, and told to wait until it is full (0.1 s → 1 s). */
    ck_assert(!ratelimit_bucket_take(&b, 0, 10, 10, 30, &v));
    ck_assert_uint_eq(v.retry_after_s, 1);
    /* Full: admitted, 20 tokens of debt = 3 s at 10/s before the bucket is full again. */
    ck_assert(ratelimit_bucket_take(&b, S, 10, 10, 30, &v));
    ck_assert_uint_eq(v.remaining, 0);
    ck_assert_uint_eq(v.reset_s, 3);
    ck_assert(!ratelimit_bucket_take(&b, S + S / 2, 10, 10, 1, &v));
    ck_assert_uint_eq(v.retry_after_s, 2); /* 15 of debt left → 1.6 s to one token → 2 */
    ck_assert(ratelimit_bucket_take(&b, 3 * S + S / 10, 10, 10, 1, &v));
}
END_TEST

START_TEST(refund_returns_tokens_up_to_the_burst)
{
    struct ratelimit_bucket b;
    struct ratelimit_verdict v;
    ratelimit_bucket_init(&b, 10, 0);
    ck_assert(ratelimit_bucket_take(&b, 0, 1, 10, 8, &v));
    ratelimit_bucket_refund(&b, 10, 5);
    ck_assert(ratelimit_bucket_take(&b, 0, 1, 10, 7, &v));
    ck_assert_uint_eq(v.remaining, 0);
    ratelimit_bucket_refund(&b, 10, 1000);
    ck_assert(ratelimit_bucket_take(&b, 0, 1, 10, 1, &v));
    ck_assert_uint_eq(v.remaining, 9);
}
END_TEST

START_TEST(extreme_values_do_not_overflow)
{
    struct ratelimit_bucket b;
    struct ratelimit_verdict v;
    ratelimit_bucket_init(&b, UINT64_MAX, 0);
    ck_assert(ratelimit_bucket_take(&b, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, &v));
    ck_assert(ratelimit_bucket_take(&b, UINT64_MAX, UINT64_MAX, UINT64_MAX, 1, &v) == false);
    ratelimit_bucket_init(&b, 1, 0);
    ck_assert(!ratelimit_bucket_take(&b, 0, 1, 1, UINT64_MAX, &v)); /* above 1 + 10 s × 1 */
    ck_assert(v.never);
    ck_assert(ratelimit_bucket_take(&b, 0, 1, 1, 11, &v)); /* full: 10 tokens of debt */
    ck_assert(!v.never);
    ck_assert(!ratelimit_bucket_take(&b, 10 * S, 1, 1, 1, &v));    /* 10 s: just paid back */
    ck_assert(ratelimit_bucket_take(&b, UINT64_MAX, 1, 1, 1, &v)); /* ~585 years later */
    ck_assert_uint_eq(v.remaining, 0);
    ratelimit_bucket_charge(&b, UINT64_MAX); /* a settlement far beyond any debt: clamped */
    ck_assert(!ratelimit_bucket_take(&b, UINT64_MAX, 1, 1, 1, &v));
}
END_TEST

/* The most a request may cost is the burst plus RATELIMIT_MAX_DEBT_S seconds of refill: so the
 * prices admitted in any window of T seconds add up to at most burst + rate × max(T, 10 s),
 * however a client mixes its requests. Checked against a simulation of greedy clients. */
START_TEST(debt_is_capped_so_admitted_prices_are_bounded_in_any_window)
{
    struct ratelimit_bucket b;
    struct ratelimit_verdict v;
    ck_assert_uint_eq(ratelimit_max_price(10, 10), 10 + 10 * RATELIMIT_MAX_DEBT_S);
    ratelimit_bucket_init(&b, 10, 0);
    ck_assert(!ratelimit_bucket_take(&b, 0, 10, 10, 111, &v) && v.never);
    ck_assert(ratelimit_bucket_take(&b, 0, 10, 10, 110, &v) && !v.never);
    uint64_t seed = 99;
    for (int round = 0; round < 200; round++) {
        uint64_t rate = 1 + xorshift64(&seed) % 50, burst = 1 + xorshift64(&seed) % 200;
        ratelimit_bucket_init(&b, burst, 0);
        /* A client trying a random price every 10 ms for 60 s; admitted prices per 20 s window. */
        uint64_t admitted[6000] = {0};
        for (int t = 0; t < 6000; t++) {
            uint64_t cost = 1 + xorshift64(&seed) % (2 * ratelimit_max_price(rate, burst));
            if (ratelimit_bucket_take(&b, (uint64_t)t * (S / 100), rate, burst, cost, &v))
                admitted[t] = cost;
        }
        uint64_t win = 0;
        for (int t = 0; t < 6000; t++) {
            win += admitted[t] - (t >= 2000 ? admitted[t - 2000] : 0);
            ck_assert_msg(win <= burst + rate * 20 + rate * RATELIMIT_MAX_DEBT_S,
                          "rate %llu burst %llu: %llu admitted in 20 s", (unsigned long long)rate,
                          (unsigned long long)burst, (unsigned long long)win);
        }
    }
}
END_TEST

START_TEST(retake_reprices_an_admitted_request_or_leaves_it_as_it_was)
{
    struct ratelimit_params p = {.rate = 10, .burst = 100, .clients = 4};
    struct ratelimit *rl = ratelimit_create(&p);
    ck_assert_ptr_nonnull(rl);
    struct ratelimit_key k;
    ck_assert_int_eq(ratelimit_client_key("192.0.2.1", NULL, NULL, 0, &k), 0);
    struct ratelimit_verdict v;
    ck_assert(ratelimit_take(rl, &k, 5, 0, 0, &v));
    ck_assert_uint_eq(v.remaining, 95);
    /* Re-priced at 150 (above the burst): admitted as from the full bucket it was before. */
    ck_assert(ratelimit_retake(rl, &k, 5, 150, 0, 0, &v));
    ck_assert_uint_eq(v.remaining, 0);
    /* A second one is refused (the bucket is in debt) and changes nothing. */
    ck_assert(ratelimit_take(rl, &k, 1, 0, 6 * S, &v)); /* 50 of debt paid at 10/s + 1 */
    ck_assert(!ratelimit_retake(rl, &k, 1, 300, 0, 6 * S, &v));
    ck_assert(v.never); /* 300 > 100 + 10 × 10 */
    ck_assert(!ratelimit_retake(rl, &k, 1, 50, 0, 6 * S, &v));
    ck_assert(!v.never);
    ck_assert(ratelimit_take(rl, &k, 9, 0, 6 * S, &v)); /* the 1 is still taken: 9 left */
    ck_assert_uint_eq(v.remaining, 0);
    ratelimit_destroy(rl);
}
END_TEST

/* ---- keys ---- */

static struct ratelimit_cidr proxies[RATELIMIT_MAX_PROXIES];
static size_t nproxies;

static void set_proxies(const char *list)
{
    char why[128];
    int n = ratelimit_cidrs_parse(list, proxies, RATELIMIT_MAX_PROXIES, why, sizeof why);
    ck_assert_msg(n >= 0, "%s: %s", list, why);
    nproxies = (size_t)n;
}

static const char *key(const char *peer, const char *xff)
{
    static char out[64];
    struct ratelimit_key k;
    if (ratelimit_client_key(peer, xff, proxies, nproxies, &k) != 0) return "ERR";
    ratelimit_key_format(&k, out, sizeof out);
    return out;
}

START_TEST(untrusted_peer_is_the_client_whatever_the_header_says)
{
    set_proxies("10.0.0.0/8");
    ck_assert_str_eq(key("203.0.113.9", NULL), "203.0.113.9");
    ck_assert_str_eq(key("203.0.113.9", "1.2.3.4"), "203.0.113.9");
    ck_assert_str_eq(key("203.0.113.9", "10.1.1.1, 198.51.100.1"), "203.0.113.9");
    set_proxies("");
    ck_assert_str_eq(key("10.0.0.1", "1.2.3.4"), "10.0.0.1"); /* no proxies: never believed */
}
END_TEST

START_TEST(trusted_peer_gives_first_untrusted_address_from_the_right)
{
    set_proxies("10.0.0.0/8, 192.168.7.7");
    ck_assert_str_eq(key("10.0.0.1", "198.51.100.1"), "198.51.100.1");
    /* The client can prepend anything; the rightmost untrusted entry is what our proxy saw. */
    ck_assert_str_eq(key("10.0.0.1", "6.6.6.6, 198.51.100.1"), "198.51.100.1");
    ck_assert_str_eq(key("10.0.0.1", "6.6.6.6, 198.51.100.1, 192.168.7.7, 10.9.9.9"),
                     "198.51.100.1");
    ck_assert_str_eq(key("192.168.7.7", " 198.51.100.2 ,10.2.3.4"), "198.51.100.2");
    /* Every hop trusted: the leftmost. No header: the peer. */
    ck_assert_str_eq(key("10.0.0.1", "10.3.3.3, 10.4.4.4"), "10.3.3.3");
    ck_assert_str_eq(key("10.0.0.1", NULL), "10.0.0.1");
    /* Ports and brackets some proxies add. */
    ck_assert_str_eq(key("10.0.0.1", "198.51.100.1:4711"), "198.51.100.1");
    ck_assert_str_eq(key("10.0.0.1", "[2001:db8::1]:443"), "2001:db8::/64");
}
END_TEST

START_TEST(ipv6_clients_are_keyed_by_their_64)
{
    set_proxies("::1, fd00::/8");
    ck_assert_str_eq(key("2001:db8:1:2:aaaa::1", NULL), "2001:db8:1:2::/64");
    ck_assert_str_eq(key("2001:db8:1:2:ffff:ffff:ffff:ffff", NULL), "2001:db8:1:2::/64");
    ck_assert_str_ne(key("2001:db8:1:3::1", NULL), "2001:db8:1:2::/64");
    ck_assert_str_eq(key("fd00::5", "2001:db8:9:9::7, fd12::1"), "2001:db8:9:9::/64");
    /* IPv4-mapped peers are IPv4 clients (full /32, not a /64 of everything IPv4). */
    ck_assert_str_eq(key("::ffff:198.51.100.7", NULL), "198.51.100.7");
    ck_assert_str_ne(key("::ffff:198.51.100.8", NULL), "198.51.100.7");
}
END_TEST

START_TEST(malformed_forwarded_for_never_yields_an_attacker_chosen_key)
{
    set_proxies("10.0.0.0/8");
    static const char *const bad[] = {
        "",           ",",         " , ,",     "garbage",          "1.2.3",          "1.2.3.4.5",
        "1.2.3.4:",   "1.2.3.4:x", "[::1",     "[::1]x",           "::1]",           "999.1.1.1",
        "1.2.3.4/24", "unknown",   "\xff\xfe", "1.2.3.4:99999999", "[::1]:99999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* Garbage on its own: the proxy that handed it over is the client. */
        ck_assert_msg(strcmp(key("10.0.0.1", bad[i]), "10.0.0.1") == 0, "'%s' → %s", bad[i],
                      key("10.0.0.1", bad[i]));
        /* Garbage left of a real client address: that address (it is to the right). */
        char h[128];
        snprintf(h, sizeof h, "%s, 198.51.100.3", bad[i]);
        ck_assert_str_eq(key("10.0.0.1", h), "198.51.100.3");
        /* Garbage right of a spoofed address: the scan stops at the garbage. */
        snprintf(h, sizeof h, "6.6.6.6, %s", bad[i]);
        ck_assert_msg(strcmp(key("10.0.0.1", h), "6.6.6.6") != 0, "'%s' → %s", h,
                      key("10.0.0.1", h));
    }
    /* An endless chain of trusted hops stops after RATELIMIT_MAX_XFF_HOPS. */
    char longh[4096] = "6.6.6.6";
    for (int i = 0; i < 100; i++)
        strcat(longh, ", 10.0.0.2");
    ck_assert_str_eq(key("10.0.0.1", longh), "10.0.0.2");
    ck_assert_str_eq(key("not-an-address", NULL), "ERR");
    ck_assert_str_eq(key("", NULL), "ERR");
}
END_TEST

START_TEST(proxy_lists_parse_strictly)
{
    struct ratelimit_cidr c[4];
    char why[128];
    ck_assert_int_eq(ratelimit_cidrs_parse("", c, 4, why, sizeof why), 0);
    ck_assert_int_eq(ratelimit_cidrs_parse("10.0.0.0/8,::1 fd00::/8", c, 4, why, sizeof why), 3);
    ck_assert_uint_eq(c[0].bits, 104);
    ck_assert_uint_eq(c[1].bits, 128);
    ck_assert_uint_eq(c[2].bits, 8);
    static const char *const bad[] = {"10.0.0.0/33", "::/129",       "10.0.0.0/",
                                      "10.0.0.0/x",  "1.2.3.4:80",   "[::1]",
                                      "host",        "10.0.0.0/8/8", "1.2.3.4/-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ratelimit_cidrs_parse(bad[i], c, 4, why, sizeof why) == -1, "%s", bad[i]);
    ck_assert_int_eq(
        ratelimit_cidrs_parse("1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5", c, 4, why, sizeof why),
        -1);
}
END_TEST

/* ---- the table ---- */

static struct ratelimit_key v4key(uint32_t a)
{
    struct ratelimit_key k = {{0}};
    k.b[10] = k.b[11] = 0xff;
    k.b[12] = (uint8_t)(a >> 24);
    k.b[13] = (uint8_t)(a >> 16);
    k.b[14] = (uint8_t)(a >> 8);
    k.b[15] = (uint8_t)a;
    return k;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

START_TEST(a_million_clients_keep_memory_flat_and_count_evictions)
{
    metrics_init(router_label_count(), router_label_name);
    struct ratelimit_params p = {.rate = 1, .burst = 5, .clients = 4096};
    struct ratelimit *rl = ratelimit_create(&p);
    ck_assert_ptr_nonnull(rl);
    struct ratelimit_stats st;
    ratelimit_stats_get(rl, &st);
    uint64_t bytes0 = st.table_bytes;
    ck_assert_uint_lt(bytes0, 4096 * 64 + 64 * 1024);
    struct ratelimit_verdict v;
    size_t count_label = label_of("/v1/count"); /* outside the loops: it asserts */
    /* Warm up (first touches of the table's pages), then measure. */
    for (uint32_t i = 0; i < 10000; i++) {
        struct ratelimit_key k = v4key(0x0a000000u + i);
        ratelimit_take(rl, &k, 1, count_label, 0, &v);
    }
    long before = rss_kib();
    /* No ck_assert inside the loop: each one records a mark point, which allocates (ASan keeps
     * the freed ones in its quarantine) and would be the growth we measure. */
    unsigned refused = 0;
    for (uint32_t i = 0; i < 1000000; i++) {
        struct ratelimit_key k = v4key(0x0b000000u + i);
        refused += !ratelimit_take(rl, &k, 1, count_label, 0, &v); /* a new client: full bucket */
    }
    long after = rss_kib();
    ck_assert_uint_eq(refused, 0);
    ratelimit_stats_get(rl, &st);
    ck_assert_uint_le(st.clients, 4096);
    ck_assert_uint_eq(st.table_bytes, bytes0);
    ck_assert_uint_ge(st.evictions, 1000000 - 4096);
    ck_assert_msg(after - before < 512, "RSS grew from %ld to %ld KiB", before, after);
    /* The metric shows them. */
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(&out, &len), 0);
    ck_assert_ptr_nonnull(strstr(out, "primed_ratelimit_clients "));
    ck_assert_ptr_nonnull(strstr(out, "primed_ratelimit_evictions_total "));
    free(out);
    ratelimit_destroy(rl);
}
END_TEST

START_TEST(table_remembers_clients_and_forgets_idle_ones)
{
    metrics_init(router_label_count(), router_label_name);
    struct ratelimit_params p = {.rate = 2, .burst = 3, .clients = 100};
    struct ratelimit *rl = ratelimit_create(&p);
    ck_assert_ptr_nonnull(rl);
    struct ratelimit_key a = v4key(1), b = v4key(2);
    struct ratelimit_verdict v;
    for (int i = 0; i < 3; i++)
        ck_assert(ratelimit_take(rl, &a, 1, label_of("/v1/count"), 0, &v));
    ck_assert(!ratelimit_take(rl, &a, 1, label_of("/v1/nth"), 0, &v));
    ck_assert(!ratelimit_take(rl, &a, 1, label_of("/v1/nth"), 0, &v));
    ck_assert(ratelimit_take(rl, &b, 3, label_of("/v1/count"), 0, &v)); /* b has its own bucket */
    ratelimit_refund(rl, &a, 1);
    ck_assert(ratelimit_take(rl, &a, 1, label_of("/v1/count"), 0, &v));
    struct ratelimit_stats st;
    ratelimit_stats_get(rl, &st);
    ck_assert_uint_eq(st.clients, 2);
    ck_assert_uint_eq(st.limited[label_of("/v1/nth")], 2);
    ck_assert_uint_eq(st.limited[label_of("/v1/count")], 0);
    /* 1 s later neither is full (2/s, 3 missing): both stay. 2 s later both are full: gone. */
    ratelimit_expire(rl, S);
    ratelimit_stats_get(rl, &st);
    ck_assert_uint_eq(st.clients, 2);
    ratelimit_expire(rl, 2 * S);
    ratelimit_stats_get(rl, &st);
    ck_assert_uint_eq(st.clients, 0);
    ck_assert_uint_eq(st.expirations, 2);
    ck_assert_uint_eq(st.evictions, 0);
    ratelimit_destroy(rl);
}
END_TEST

START_TEST(full_table_prefers_idle_then_cold_entries)
{
    metrics_init(router_label_count(), router_label_name);
    struct ratelimit_params p = {.rate = 1, .burst = 10, .clients = 8}; /* one shard */
    struct ratelimit *rl = ratelimit_create(&p);
    struct ratelimit_verdict v;
    for (uint32_t i = 0; i < 8; i++) {
        struct ratelimit_key k = v4key(i);
        ck_assert(ratelimit_take(rl, &k, 10, label_of("/v1/count"), 0, &v)); /* all empty */
    }
    /* A ninth client at t = 0: nobody is idle, someone is evicted (counted). */
    struct ratelimit_key k9 = v4key(9);
    ck_assert(ratelimit_take(rl, &k9, 1, label_of("/v1/count"), 0, &v));
    struct ratelimit_stats st;
    ratelimit_stats_get(rl, &st);
    ck_assert_uint_eq(st.evictions, 1);
    ck_assert_uint_eq(st.clients, 8);
    /* 20 s later every bucket is full: a new client reuses an idle slot, no eviction. */
    struct ratelimit_key k10 = v4key(10);
    ck_assert(ratelimit_take(rl, &k10, 1, label_of("/v1/count"), 20 * S, &v));
    ratelimit_stats_get(rl, &st);
    ck_assert_uint_eq(st.evictions, 1);
    ck_assert_uint_eq(st.expirations, 1);
    ratelimit_destroy(rl);
}
END_TEST

/* Four threads take from the same 1000 clients at a fixed time: whatever the interleaving,
 * exactly burst × clients requests are admitted (each take is atomic under its shard lock), while
 * a fifth thread expires and reads stats. Run under TSan too. */
struct hammer {
    struct ratelimit *rl;
    unsigned seed;
    unsigned allowed;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    struct ratelimit_verdict v;
    for (unsigned i = 0; i < 20000; i++) {
        h->seed = h->seed * 1103515245u + 12345u;
        struct ratelimit_key k = v4key((h->seed >> 8) % 1000);
        h->allowed += ratelimit_take(h->rl, &k, 1, label_of("/v1/isprime"), S, &v);
    }
    return NULL;
}

static atomic_int hammer_stop;
static void *expirer_run(void *arg)
{
    struct ratelimit_stats st;
    while (!atomic_load(&hammer_stop)) {
        ratelimit_expire(arg, S); /* at the same time: nobody is idle, nothing expires */
        ratelimit_stats_get(arg, &st);
    }
    return NULL;
}

START_TEST(concurrent_takes_are_atomic_per_client)
{
    metrics_init(router_label_count(), router_label_name);
    struct ratelimit_params p = {.rate = 1, .burst = 10, .clients = 4096};
    struct ratelimit *rl = ratelimit_create(&p);
    struct hammer h[4];
    pthread_t t[4], ex;
    atomic_store(&hammer_stop, 0);
    pthread_create(&ex, NULL, expirer_run, rl);
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){.rl = rl, .seed = (unsigned)i * 7919u + 1};
        pthread_create(&t[i], NULL, hammer_run, &h[i]);
    }
    unsigned allowed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        allowed += h[i].allowed;
    }
    atomic_store(&hammer_stop, 1);
    pthread_join(ex, NULL);
    struct ratelimit_stats st;
    ratelimit_stats_get(rl, &st);
    ck_assert_uint_eq(st.clients, 1000);
    ck_assert_uint_eq(st.evictions + st.expirations, 0);
    ck_assert_uint_eq(allowed, 10 * 1000);
    ck_assert_uint_eq(st.limited[label_of("/v1/isprime")], 4 * 20000 - 10 * 1000);
    ratelimit_destroy(rl);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *b = tcase_create("bucket");
    tcase_add_test(b, fresh_bucket_allows_the_burst_then_refuses);
    tcase_add_test(b, refill_is_rate_times_elapsed_and_capped_at_burst);
    tcase_add_test(b, clock_going_backwards_refills_nothing);
    tcase_add_test(b, cost_above_burst_needs_a_full_bucket_and_leaves_debt);
    tcase_add_test(b, debt_is_capped_so_admitted_prices_are_bounded_in_any_window);
    tcase_add_test(b, retake_reprices_an_admitted_request_or_leaves_it_as_it_was);
    tcase_add_test(b, refund_returns_tokens_up_to_the_burst);
    tcase_add_test(b, extreme_values_do_not_overflow);
    suite_add_tcase(s, b);
    TCase *k = tcase_create("keys");
    tcase_add_test(k, untrusted_peer_is_the_client_whatever_the_header_says);
    tcase_add_test(k, trusted_peer_gives_first_untrusted_address_from_the_right);
    tcase_add_test(k, ipv6_clients_are_keyed_by_their_64);
    tcase_add_test(k, malformed_forwarded_for_never_yields_an_attacker_chosen_key);
    tcase_add_test(k, proxy_lists_parse_strictly);
    suite_add_tcase(s, k);
    TCase *t = tcase_create("table");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, a_million_clients_keep_memory_flat_and_count_evictions);
    tcase_add_test(t, table_remembers_clients_and_forgets_idle_ones);
    tcase_add_test(t, full_table_prefers_idle_then_cold_entries);
    tcase_add_test(t, concurrent_takes_are_atomic_per_client);
    suite_add_tcase(s, t);
    return s;
}

PRIMED_CHECK_MAIN(ratelimit_suite)
