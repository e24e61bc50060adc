/* test_jsonw.c — the bounded JSON writer: u64 formatting against snprintf, escaping checked by
 * parsing the output back with jansson, bounds and all-or-nothing appends, dynamic growth. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/jsonw.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

static void check_u64(uint64_t v)
{
    char want[32], got[JSONW_U64_MAX + 1];
    int wn = snprintf(want, sizeof(want), "%" PRIu64, v);
    size_t n = jsonw_u64_format(got, v);
    got[n] = '\0';
    ck_assert_int_eq((int)n, wn);
    ck_assert_str_eq(got, want);
}

START_TEST(u64_format_matches_snprintf_at_boundaries)
{
    static const uint64_t vals[] = {0,
                                    1,
                                    9,
                                    10,
                                    11,
                                    99,
                                    100,
                                    101,
                                    999,
                                    1000,
                                    UINT64_MAX,
                                    UINT64_MAX - 1,
                                    10000000000000000000ULL,
                                    9999999999999999999ULL,
                                    9223372036854775807ULL,
                                    9223372036854775808ULL};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        check_u64(vals[i]);
    /* every power of ten and its neighbours: the digit-count edges */
    uint64_t p = 1;
    for (int k = 0; k < 20; k++) {
        check_u64(p - 1);
        check_u64(p);
        check_u64(p + 1);
        if (k < 19) p *= 10;
    }
    /* every power of two and its neighbours: the bit-length estimate edges */
    for (int b = 0; b < 64; b++) {
        uint64_t x = 1ULL << b;
        check_u64(x - 1);
        check_u64(x);
        check_u64(x + 1);
    }
}
END_TEST

START_TEST(u64_format_matches_snprintf_for_random_values)
{
    for (int i = 0; i < 500000; i++)
        check_u64(rnd() >> (rnd() % 64)); /* spread over every digit count */
}
END_TEST

START_TEST(fixed_writer_builds_valid_json_with_u64_above_int64)
{
    char buf[256];
    struct jsonw w;
    jsonw_init_fixed(&w, buf, sizeof(buf));
    jsonw_lit(&w, "{\"p\":[");
    jsonw_u64(&w, UINT64_MAX - 58); /* the largest prime below 2^64 */
    jsonw_char(&w, ',');
    jsonw_u64(&w, 2);
    jsonw_lit(&w, "],\"ok\":");
    jsonw_bool(&w, true);
    jsonw_lit(&w, ",\"no\":");
    jsonw_bool(&w, false);
    jsonw_lit(&w, ",\"s\":");
    jsonw_str(&w, "a\"b\\c");
    jsonw_char(&w, '}');
    ck_assert(!w.overflow);
    ck_assert_str_eq(buf, "{\"p\":[18446744073709551557,2],\"ok\":true,\"no\":false,"
                          "\"s\":\"a\\\"b\\\\c\"}");
    ck_assert_uint_eq(w.len, strlen(buf));
    /* jansson reads it back (as a real, since it exceeds its signed integers) */
    json_error_t e;
    json_t *j = json_loads(buf, JSON_DECODE_INT_AS_REAL, &e);
    ck_assert_msg(j != NULL, "%s", e.text);
    ck_assert(json_is_true(json_object_get(j, "ok")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "s")), "a\"b\\c");
    json_decref(j);
}
END_TEST

/* Every byte value and many random byte strings, escaped, must parse back with jansson to the
 * input itself when it is valid UTF-8, and always to valid JSON. */
static json_t *roundtrip(const char *s, size_t n)
{
    struct jsonw w;
    jsonw_init_dynamic(&w, 1 << 20);
    ck_assert_int_eq(jsonw_strn(&w, s, n), 0);
    json_error_t e;
    /* \u0000 is valid JSON; jansson only wants to be told it may appear */
    json_t *j = json_loadb(w.buf, w.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    ck_assert_msg(j != NULL, "escaped output is not JSON: %s (%s)", w.buf, e.text);
    ck_assert(json_is_string(j));
    jsonw_fini(&w);
    return j;
}

START_TEST(escaped_strings_parse_back_identically)
{
    static const char *const samples[] = {
        "",           "plain",        "quote\"backslash\\",
        "\n\r\t\b\f", "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "/slash/"};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        json_t *j = roundtrip(samples[i], strlen(samples[i]));
        ck_assert_str_eq(json_string_value(j), samples[i]);
        json_decref(j);
    }
    /* every single byte 1…0x7f */
    for (int c = 1; c < 0x80; c++) {
        char s[2] = {(char)c, 0};
        json_t *j = roundtrip(s, 1);
        ck_assert_str_eq(json_string_value(j), s);
        json_decref(j);
    }
    /* an embedded NUL survives as \u0000 */
    json_t *j = roundtrip("a\0b", 3);
    ck_assert_uint_eq(json_string_length(j), 3);
    ck_assert_int_eq(memcmp(json_string_value(j), "a\0b", 3), 0);
    json_decref(j);
}
END_TEST

START_TEST(invalid_utf8_becomes_replacement_character)
{
    static const char *const bad[] = {
        "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xc3", "\xe2\x82", "\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = roundtrip(bad[i], strlen(bad[i]));
        const char *v = json_string_value(j);
        ck_assert_msg(strstr(v, "\xef\xbf\xbd") != NULL, "sample %zu not replaced", i);
        json_decref(j);
    }
}
END_TEST

START_TEST(random_bytes_always_escape_to_valid_json)
{
    char s[64];
    for (int i = 0; i < 20000; i++) {
        size_t n = rnd() % sizeof(s);
        for (size_t k = 0; k < n; k++)
            s[k] = (char)rnd();
        json_decref(roundtrip(s, n));
    }
}
END_TEST

START_TEST(full_fixed_buffer_rejects_whole_append)
{
    char buf[8];
    struct jsonw w;
    jsonw_init_fixed(&w, buf, sizeof(buf)); /* 7 bytes of text + NUL */
    ck_assert_int_eq(jsonw_lit(&w, "12345"), 0);
    ck_assert_int_eq(jsonw_u64(&w, 123), -ENOSPC); /* would need 8 */
    ck_assert(w.overflow);
    ck_assert_str_eq(buf, "12345"); /* nothing half-written */
    ck_assert_int_eq(jsonw_str(&w, "ab"), -ENOSPC);
    ck_assert_str_eq(buf, "12345");
    ck_assert_int_eq(jsonw_u64(&w, 12), 0); /* exactly fills */
    ck_assert_str_eq(buf, "1234512");
    ck_assert_int_eq(jsonw_char(&w, 'x'), -ENOSPC);
    jsonw_reset(&w);
    ck_assert(!w.overflow);
    ck_assert_uint_eq(w.len, 0);
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(dynamic_writer_grows_to_its_cap_and_no_further)
{
    struct jsonw w;
    jsonw_init_dynamic(&w, 1000);
    char want[1100];
    size_t wl = 0;
    int i = 0;
    for (;; i++) {
        char d[32];
        int n = snprintf(d, sizeof(d), "%d,", i * 7919);
        int rc = jsonw_u64(&w, (uint64_t)i * 7919);
        if (rc != 0) {
            ck_assert_int_eq(rc, -ENOSPC);
            break;
        }
        jsonw_char(&w, ',');
        ck_assert(wl + (size_t)n <= sizeof(want));
        memcpy(want + wl, d, (size_t)n);
        wl += (size_t)n;
        if (w.overflow) break;
    }
    ck_assert(w.len <= 1000);
    ck_assert(w.len > 990); /* filled up to the cap, give or take one number */
    size_t len;
    char *out = jsonw_steal(&w, &len);
    ck_assert_uint_eq(len, strlen(out));
    /* identical to what snprintf produced for the same sequence */
    ck_assert(len <= wl);
    ck_assert_int_eq(memcmp(out, want, len), 0);
    free(out);
    ck_assert_ptr_null(w.buf);
    jsonw_fini(&w);
}
END_TEST

START_TEST(steal_of_empty_writer_gives_empty_string)
{
    struct jsonw w;
    jsonw_init_dynamic(&w, 10);
    size_t len = 99;
    char *s = jsonw_steal(&w, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

START_TEST(truncated_string_stays_valid_json_and_marks_cut)
{
    char long_s[300];
    for (int i = 0; i < 299; i++)
        long_s[i] = (char)('a' + i % 26);
    long_s[299] = '\0';
    /* Multibyte characters and escapes near the cut must not be split. */
    const char *tricky = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"\"\"\n\n\n\x01\x01\x01";
    for (size_t limit = 5; limit < 40; limit++) {
        const char *srcs[] = {long_s, tricky};
        for (int k = 0; k < 2; k++) {
            struct jsonw w;
            jsonw_init_dynamic(&w, 1000);
            int rc = jsonw_strn_trunc(&w, srcs[k], strlen(srcs[k]), limit);
            ck_assert_int_ge(rc, 0);
            ck_assert(w.len <= limit);
            json_error_t e;
            json_t *j = json_loadb(w.buf, w.len, JSON_DECODE_ANY, &e);
            ck_assert_msg(j != NULL, "limit %zu: %s is not JSON: %s", limit, w.buf, e.text);
            const char *v = json_string_value(j);
            if (rc == 1) {
                size_t vl = strlen(v);
                ck_assert(vl >= 3 && strcmp(v + vl - 3, "...") == 0);
                ck_assert_int_eq(strncmp(v, srcs[k], vl - 3), 0); /* a true prefix */
            } else {
                ck_assert_str_eq(v, srcs[k]);
            }
            json_decref(j);
            jsonw_fini(&w);
        }
    }
}
END_TEST

START_TEST(escape_reports_consumed_input)
{
    char out[8];
    size_t used;
    size_t n = jsonw_escape(out, sizeof(out), "ab\"cd\x01", 6, &used);
    /* a b \" c d = 6 bytes; the 6-byte \u0001 does not fit in the 2 left */
    ck_assert_uint_eq(n, 6);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(memcmp(out, "ab\\\"cd", 6), 0);
}
END_TEST

/* The streaming helper: for every buffer size, the items written form exactly the prefix that
 * snprintf would produce, no item is cut, and successive calls continue one array. */
START_TEST(u64_items_fill_buffers_with_whole_numbers_only)
{
    enum { N = 300 };
    uint64_t v[N];
    char want[N * 21 + 1];
    size_t wl = 0;
    for (int i = 0; i < N; i++) {
        v[i] = rnd() >> (rnd() % 64);
        wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s%" PRIu64, i ? "," : "", v[i]);
    }
    for (size_t size = 1; size < 300; size += 7) {
        /* fixed buffers of every size, refilled until all items are out */
        char out[N * 21 + 1];
        size_t ol = 0, done = 0;
        bool need_sep = false;
        int rounds = 0;
        while (done < N) {
            char buf[300];
            struct jsonw w;
            jsonw_init_fixed(&w, buf, size + 1);
            size_t k = jsonw_u64_items(&w, v + done, N - done, ',', &need_sep);
            ck_assert(!w.overflow);
            ck_assert(w.len <= size);
            if (k == 0) { /* only when even one item cannot fit */
                ck_assert(size < 21);
                break;
            }
            memcpy(out + ol, buf, w.len);
            ol += w.len;
            done += k;
            ck_assert_int_lt(++rounds, 2 * N);
        }
        if (done == N) {
            ck_assert_uint_eq(ol, wl);
            ck_assert_int_eq(memcmp(out, want, wl), 0);
        } else {
            ck_assert_int_eq(memcmp(out, want, ol), 0); /* a true prefix */
        }
    }
    /* dynamic: grows to its cap, then stops at an item boundary */
    struct jsonw w;
    jsonw_init_dynamic(&w, 1000);
    bool need_sep = false;
    size_t k = jsonw_u64_items(&w, v, N, ',', &need_sep);
    ck_assert(k > 0 && k < N);
    ck_assert(w.len <= 1000 && w.len > 1000 - 21);
    ck_assert_int_eq(memcmp(w.buf, want, w.len), 0);
    ck_assert(want[w.len] == ',');
    ck_assert(!w.overflow);
    jsonw_fini(&w);
}
END_TEST

/* Runs of close, increasing values (as primes are listed) share the digits above the last four:
 * items must match snprintf where those digits change, around every power of ten, next to
 * values below 10^4 and up to 2^64 - 1. */
START_TEST(u64_items_match_snprintf_for_increasing_runs)
{
    static const uint64_t starts[] = {
        0, 9000, 99990, 999999990, 1000000000, 99999999990, 9999999999999990, UINT64_MAX - 500};
    for (size_t t = 0; t < sizeof starts / sizeof starts[0]; t++) {
        enum { N = 400 };
        uint64_t v[N];
        char want[N * 21 + 1], buf[N * 21 + 1];
        size_t wl = 0;
        uint64_t x = starts[t];
        for (int i = 0; i < N; i++) {
            v[i] = x;
            wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%" PRIu64, i ? "\n" : "", x);
            uint64_t step = 1 + rnd() % (i % 50 == 0 ? 20000 : 40);
            x = UINT64_MAX - x < step ? UINT64_MAX : x + step;
        }
        struct jsonw w;
        jsonw_init_fixed(&w, buf, sizeof buf);
        bool need_sep = false;
        ck_assert_uint_eq(jsonw_u64_items(&w, v, N, '\n', &need_sep), N);
        ck_assert_uint_eq(w.len, wl);
        ck_assert_msg(memcmp(buf, want, wl) == 0, "run from %" PRIu64, starts[t]);
    }
}
END_TEST

START_TEST(steal_from_fixed_writer_copies)
{
    char buf[16];
    struct jsonw w;
    jsonw_init_fixed(&w, buf, sizeof(buf));
    jsonw_lit(&w, "[1,2]");
    size_t len;
    char *s = jsonw_steal(&w, &len);
    ck_assert_ptr_ne(s, buf);
    ck_assert_str_eq(s, "[1,2]");
    ck_assert_uint_eq(len, 5);
    ck_assert_uint_eq(w.len, 0);
    free(s);
}
END_TEST

static Suite *jsonw_suite(void)
{
    Suite *s = suite_create("jsonw");
    TCase *tc = tcase_create("jsonw");
    tcase_add_test(tc, u64_format_matches_snprintf_at_boundaries);
    tcase_add_test(tc, u64_format_matches_snprintf_for_random_values);
    tcase_add_test(tc, fixed_writer_builds_valid_json_with_u64_above_int64);
    tcase_add_test(tc, escaped_strings_parse_back_identically);
    tcase_add_test(tc, invalid_utf8_becomes_replacement_character);
    tcase_add_test(tc, random_bytes_always_escape_to_valid_json);
    tcase_add_test(tc, full_fixed_buffer_rejects_whole_append);
    tcase_add_test(tc, dynamic_writer_grows_to_its_cap_and_no_further);
    tcase_add_test(tc, steal_of_empty_writer_gives_empty_string);
    tcase_add_test(tc, truncated_string_stays_valid_json_and_marks_cut);
    tcase_add_test(tc, escape_reports_consumed_input);
    tcase_add_test(tc, u64_items_fill_buffers_with_whole_numbers_only);
    tcase_add_test(tc, u64_items_match_snprintf_for_increasing_runs);
    tcase_add_test(tc, steal_from_fixed_writer_copies);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(jsonw_suite)
