/* test_pprofenc.c — the pprof profile writer, read back the hard way: gunzip with zlib and
 * decode profile.proto's wire format with a small reader written here from the spec
 * (github.com/google/pprof/proto/profile.proto), then check every field a pprof client needs:
 * string_table[0] == "", sample types, samples with location ids, values and repeated labels,
 * mappings, address and name-only locations and their functions, period. The real clients
 * (`go tool pprof`, google-pprof) read the service's output in tests/test_threads.sh. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../src/pprofenc.h"
#include "check_main.h"

/* ---- a minimal protobuf reader -------------------------------------------------------------- */

struct field {
    unsigned num, wt;
    uint64_t v;             /* varint value */
    const unsigned char *p; /* length-delimited bytes */
    size_t n;
};

static bool varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Next field of [*p, end); false at the end. Fails the test on malformed input. */
static bool next(const unsigned char **p, const unsigned char *end, struct field *f)
{
    if (*p >= end) return false;
    uint64_t key;
    ck_assert(varint(p, end, &key));
    f->num = (unsigned)(key >> 3);
    f->wt = (unsigned)(key & 7);
    if (f->wt == 0) {
        ck_assert(varint(p, end, &f->v));
    } else {
        ck_assert_uint_eq(f->wt, 2);
        uint64_t n;
        ck_assert(varint(p, end, &n));
        ck_assert(n <= (uint64_t)(end - *p));
        f->p = *p;
        f->n = (size_t)n;
        *p += n;
    }
    return true;
}

static unsigned char *gunzip(const char *in, size_t n, size_t *out_len)
{
    ck_assert(n > 2 && (unsigned char)in[0] == 0x1f && (unsigned char)in[1] == 0x8b);
    size_t cap = 1 << 20;
    unsigned char *out = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    inflateEnd(&z);
    return out;
}

/* The decoded profile, as far as the tests look. */
#define MAXN 64
struct decoded {
    const char *str[MAXN]; /* string_table, copied */
    unsigned nstr;
    uint64_t type, unit, period, ptype;
    unsigned nsample;
    uint64_t sample_loc[MAXN][8];
    unsigned sample_nloc[MAXN];
    int64_t sample_value[MAXN];
    uint64_t label_key[MAXN][8], label_str[MAXN][8];
    unsigned nlabel[MAXN];
    unsigned nmap;
    uint64_t map_id[MAXN], map_start[MAXN], map_limit[MAXN], map_off[MAXN], map_file[MAXN];
    unsigned nloc;
    uint64_t loc_id[MAXN], loc_map[MAXN], loc_addr[MAXN], loc_fn[MAXN];
    unsigned nfn;
    uint64_t fn_id[MAXN], fn_name[MAXN];
    unsigned ncomment;
    uint64_t comment[MAXN];
};

static void packed(const struct field *f, uint64_t *out, unsigned *n, unsigned max)
{
    const unsigned char *p = f->p, *end = f->p + f->n;
    while (p < end) {
        ck_assert_uint_lt(*n, max);
        ck_assert(varint(&p, end, &out[(*n)++]));
    }
}

static void decode(const unsigned char *buf, size_t len, struct decoded *d)
{
    memset(d, 0, sizeof *d);
    const unsigned char *p = buf, *end = buf + len;
    struct field f, g, h;
    while (next(&p, end, &f)) {
        const unsigned char *q = f.p, *qe = f.p + f.n;
        switch (f.num) {
        case 1:  /* sample_type */
        case 11: /* period_type */
            while (next(&q, qe, &g)) {
                if (f.num == 1 && g.num == 1) d->type = g.v;
                if (f.num == 1 && g.num == 2) d->unit = g.v;
                if (f.num == 11 && g.num == 1) d->ptype = g.v;
            }
            break;
        case 2: { /* sample */
            unsigned s = d->nsample++;
            ck_assert_uint_lt(s, MAXN);
            while (next(&q, qe, &g)) {
                if (g.num == 1) packed(&g, d->sample_loc[s], &d->sample_nloc[s], 8);
                if (g.num == 2) {
                    uint64_t v[1];
                    unsigned nv = 0;
                    packed(&g, v, &nv, 1);
                    d->sample_value[s] = (int64_t)v[0];
                }
                if (g.num == 3) {
                    unsigned l = d->nlabel[s]++;
                    const unsigned char *r = g.p, *re = g.p + g.n;
                    while (next(&r, re, &h)) {
                        if (h.num == 1) d->label_key[s][l] = h.v;
                        if (h.num == 2) d->label_str[s][l] = h.v;
                    }
                }
            }
            break;
        }
        case 3: { /* mapping */
            unsigned m = d->nmap++;
            while (next(&q, qe, &g)) {
                if (g.num == 1) d->map_id[m] = g.v;
                if (g.num == 2) d->map_start[m] = g.v;
                if (g.num == 3) d->map_limit[m] = g.v;
                if (g.num == 4) d->map_off[m] = g.v;
                if (g.num == 5) d->map_file[m] = g.v;
            }
            break;
        }
        case 4: { /* location */
            unsigned l = d->nloc++;
            while (next(&q, qe, &g)) {
                if (g.num == 1) d->loc_id[l] = g.v;
                if (g.num == 2) d->loc_map[l] = g.v;
                if (g.num == 3) d->loc_addr[l] = g.v;
                if (g.num == 4) {
                    const unsigned char *r = g.p, *re = g.p + g.n;
                    while (next(&r, re, &h))
                        if (h.num == 1) d->loc_fn[l] = h.v;
                }
            }
            break;
        }
        case 5: { /* function */
            unsigned fn = d->nfn++;
            while (next(&q, qe, &g)) {
                if (g.num == 1) d->fn_id[fn] = g.v;
                if (g.num == 2) d->fn_name[fn] = g.v;
            }
            break;
        }
        case 6: { /* string_table */
            ck_assert_uint_lt(d->nstr, MAXN);
            char *s = malloc(f.n + 1);
            memcpy(s, f.p, f.n);
            s[f.n] = '\0';
            d->str[d->nstr++] = s;
            break;
        }
        case 12:
            d->period = f.v;
            break;
        case 13:
            d->comment[d->ncomment++] = f.v;
            break;
        default:
            break;
        }
    }
}

static void decoded_free(struct decoded *d)
{
    for (unsigned i = 0; i < d->nstr; i++)
        free((void *)d->str[i]);
}

static const char *S(const struct decoded *d, uint64_t i)
{
    ck_assert_uint_lt(i, d->nstr);
    return d->str[i];
}

/* ---- tests --------------------------------------------------------------------------------- */

START_TEST(profile_decodes_to_what_was_written)
{
    struct pprofenc *b = pprofenc_create("threads", "count");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(pprofenc_mapping(b, 0x400000, 0x500000, 0x1000, "/usr/bin/primed"), 0);
    uint64_t a = pprofenc_location_addr(b, 0x401234);
    uint64_t c = pprofenc_location_addr(b, 0x9999999);         /* outside every mapping */
    ck_assert_uint_eq(pprofenc_location_addr(b, 0x401234), a); /* interned */
    uint64_t n = pprofenc_location_name(b, "<no answer in 100 ms>");
    ck_assert(a && c && n && a != c && c != n);
    const struct pprofenc_label l1[] = {
        {"role", "worker"}, {"thread", "primed-wrk-0"}, {"thread", "primed-wrk-1"}};
    const uint64_t s1[] = {a, c};
    ck_assert_int_eq(pprofenc_sample(b, s1, 2, 2, l1, 3), 0);
    const struct pprofenc_label l2[] = {{"role", "other"}};
    ck_assert_int_eq(pprofenc_sample(b, &n, 1, 1, l2, 1), 0);
    ck_assert_int_eq(pprofenc_comment(b, "a comment"), 0);
    char *out;
    size_t len;
    ck_assert_int_eq(pprofenc_finish(b, 1234567890, &out, &len), 0);
    pprofenc_destroy(b);

    size_t rawlen;
    unsigned char *raw = gunzip(out, len, &rawlen);
    free(out);
    struct decoded d;
    decode(raw, rawlen, &d);
    free(raw);

    ck_assert_uint_ge(d.nstr, 1);
    ck_assert_str_eq(d.str[0], "");
    ck_assert_str_eq(S(&d, d.type), "threads");
    ck_assert_str_eq(S(&d, d.unit), "count");
    ck_assert_str_eq(S(&d, d.ptype), "threads");
    ck_assert_uint_eq(d.period, 1);
    ck_assert_uint_eq(d.ncomment, 1);
    ck_assert_str_eq(S(&d, d.comment[0]), "a comment");

    ck_assert_uint_eq(d.nmap, 1);
    ck_assert_uint_eq(d.map_id[0], 1);
    ck_assert_uint_eq(d.map_start[0], 0x400000);
    ck_assert_uint_eq(d.map_limit[0], 0x500000);
    ck_assert_uint_eq(d.map_off[0], 0x1000);
    ck_assert_str_eq(S(&d, d.map_file[0]), "/usr/bin/primed");

    ck_assert_uint_eq(d.nsample, 2);
    ck_assert_uint_eq(d.sample_nloc[0], 2);
    ck_assert_uint_eq(d.sample_loc[0][0], a);
    ck_assert_uint_eq(d.sample_loc[0][1], c);
    ck_assert_int_eq(d.sample_value[0], 2);
    ck_assert_uint_eq(d.nlabel[0], 3);
    ck_assert_str_eq(S(&d, d.label_key[0][0]), "role");
    ck_assert_str_eq(S(&d, d.label_str[0][0]), "worker");
    ck_assert_str_eq(S(&d, d.label_key[0][1]), "thread");
    ck_assert_str_eq(S(&d, d.label_str[0][1]), "primed-wrk-0");
    ck_assert_str_eq(S(&d, d.label_key[0][2]), "thread");
    ck_assert_str_eq(S(&d, d.label_str[0][2]), "primed-wrk-1");
    ck_assert_uint_eq(d.sample_nloc[1], 1);
    ck_assert_uint_eq(d.sample_loc[1][0], n);
    ck_assert_int_eq(d.sample_value[1], 1);
    ck_assert_str_eq(S(&d, d.label_str[1][0]), "other");

    /* three locations: two addresses (one in the mapping), one naming its function */
    ck_assert_uint_eq(d.nloc, 3);
    bool seen_a = false, seen_c = false, seen_n = false;
    for (unsigned i = 0; i < d.nloc; i++) {
        if (d.loc_id[i] == a) {
            seen_a = true;
            ck_assert_uint_eq(d.loc_map[i], 1);
            ck_assert_uint_eq(d.loc_addr[i], 0x401234);
        } else if (d.loc_id[i] == c) {
            seen_c = true;
            ck_assert_uint_eq(d.loc_map[i], 0);
            ck_assert_uint_eq(d.loc_addr[i], 0x9999999);
        } else if (d.loc_id[i] == n) {
            seen_n = true;
            ck_assert_uint_eq(d.nfn, 1);
            ck_assert_uint_eq(d.loc_fn[i], d.fn_id[0]);
            ck_assert_str_eq(S(&d, d.fn_name[0]), "<no answer in 100 ms>");
        }
    }
    ck_assert(seen_a && seen_c && seen_n);
    decoded_free(&d);
}
END_TEST

START_TEST(many_addresses_intern_to_one_location_each)
{
    /* 50,000 lookups of 5,000 addresses: ids are dense, stable and distinct (the hash table
     * grows through several sizes on the way). */
    struct pprofenc *b = pprofenc_create("threads", "count");
    ck_assert_ptr_nonnull(b);
    static uint64_t first[5000];
    for (unsigned round = 0; round < 10; round++) {
        for (unsigned i = 0; i < 5000; i++) {
            uint64_t id = pprofenc_location_addr(b, 0x7f0000000000ULL + (uint64_t)i * 16);
            ck_assert_uint_ne(id, 0);
            ck_assert_uint_le(id, 5000);
            if (round == 0)
                first[i] = id;
            else
                ck_assert_uint_eq(id, first[i]);
        }
    }
    for (unsigned i = 1; i < 5000; i++)
        ck_assert_uint_ne(first[i], first[i - 1]);
    pprofenc_destroy(b);
}
END_TEST

START_TEST(empty_profile_is_valid_gzip)
{
    struct pprofenc *b = pprofenc_create("threads", "count");
    char *out;
    size_t len, rawlen;
    ck_assert_int_eq(pprofenc_finish(b, 0, &out, &len), 0);
    pprofenc_destroy(b);
    unsigned char *raw = gunzip(out, len, &rawlen);
    free(out);
    struct decoded d;
    decode(raw, rawlen, &d);
    free(raw);
    ck_assert_uint_eq(d.nsample, 0);
    ck_assert_str_eq(d.str[0], "");
    ck_assert_str_eq(S(&d, d.type), "threads");
    decoded_free(&d);
}
END_TEST

static Suite *pprofenc_suite(void)
{
    Suite *s = suite_create("pprofenc");
    TCase *tc = tcase_create("encode");
    tcase_set_timeout(tc, 60); /* the sanitizer builds on a loaded machine */
    tcase_add_test(tc, profile_decodes_to_what_was_written);
    tcase_add_test(tc, many_addresses_intern_to_one_location_each);
    tcase_add_test(tc, empty_profile_is_valid_gzip);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(pprofenc_suite)
