/* op_primes.c — GET /v1/primes?from=A&to=B[&format=json|text]: the primes in [A, B], streamed.
 *
 * Body: {"from":A,"to":B,"primes":[…],"count":N} — "count" comes last because the list is
 * streamed and its length is known only at the end (computing it first would sieve the range
 * twice). Text format: one prime per line. Not a batch op (its answer has no fixed size).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api_op.h"
#include "primed/errors.h"
#include "primed/jsonw.h"

static bool wants_text(const struct http_request *req)
{
    const char *acc = req->get_header ? req->get_header(req, "Accept") : NULL;
    return acc && strstr(acc, "text/plain") && !strstr(acc, "application/json");
}

static enum api_plan primes_parse(const struct api_ctx *ctx, const struct http_request *req,
                                  struct api_query *q, struct http_response *resp)
{
    struct http_params p;
    if (api_params_check(req, q->op, &p, resp) ||
        api_range_params(&p, q, ctx->cfg->max_list_range, "max_list_range", resp))
        return API_ANSWERED;
    const char *f = p.vals[2];
    if (f && strcmp(f, "text") == 0)
        q->text = true;
    else if (f && strcmp(f, "json") == 0)
        q->text = false;
    else if (f) {
        errors_render(resp, PERR_BAD_PARAM, "format", NULL, "format must be json or text");
        return API_ANSWERED;
    } else
        q->text = wants_text(req);
    return API_STREAM;
}

/* Measured on the benchmark machine (docs/benchmarks.md): counting sieves ~8e6 numbers per ms
 * of one worker below 1e10; higher up every number costs more (more sieving primes, bucket
 * sieving): ~13x at 1e18, ~15x near 2^64. Listing costs ~4x counting (formatting and sending);
 * it cannot take count's π shortcut. */
#define COST_NUMBERS_PER_MS 8e6
#define COST_LIST_FACTOR 4.0

static double height_factor(uint64_t hi)
{
    return hi <= 10000000000ull ? 1.0 : 1.0 + 1.5 * (log10((double)hi) - 10.0);
}

static double primes_cost_ms(const struct api_ctx *ctx, const struct api_query *q)
{
    (void)ctx; /* a listing sieves: no π shortcut, so no cache */
    return COST_LIST_FACTOR * ((double)(q->b - q->a) + 1.0) / COST_NUMBERS_PER_MS *
           height_factor(q->b);
}

/* A stream holds a buffer charged to the budget for as long as its reader takes. */
static bool primes_holds_memory(const struct api_query *q)
{
    (void)q;
    return true;
}

const char *api_stream_content_type(const struct api_query *q)
{
    return q->text ? HTTP_TEXT : HTTP_JSON;
}

/* ---- streaming ----------------------------------------------------------------------------- */

/* A stream job never waits for its reader: when no block is free it records where it stopped
 * (q->pos) and returns POOL_PARKED; the stream resumes it once half of the buffer is free, and
 * the next run restarts the sieve at the first prime that did not fit. The range is sieved in
 * chunks sized to produce about half a buffer of text (stream_chunk_span), so a park throws away
 * at most one chunk of sieving: with whole-range calls every resume re-sieved a full segment
 * (7.8e6 numbers with 256 KiB segments, ~4 MB of text) to send 128 KiB: 6× the sieving work
 * for /v1/primes to 1e9. A chunk costs one sieving-prime setup (π(√hi) divisions; ~3400 at 1e9,
 * 78k at 1e12); above ~1e13 the sieve's narrow-window hybrid (Miller–Rabin on survivors) takes
 * over, so a restart never pays a big-prime window pass. Keeping the sieved-but-unsent primes
 * instead would avoid the re-sieving, but costs up to a segment of primes per parked stream,
 * outside the memory budget. */

#define EMIT_PARKED 1 /* emit/next_block result: the producer parked (not an error) */
struct emit_state {
    struct stream *s;
    struct jsonw w; /* fixed writer over the block being filled; w.buf NULL = no block */
    bool need_sep, text;
    uint64_t count;
    uint64_t next; /* where to resume when parking inside emit_primes */
};

/* Publish the current block, take a fresh one. 0, EMIT_PARKED or -ECANCELED. */
static int next_block(struct emit_state *st)
{
    if (st->w.buf) stream_block_commit(st->s, st->w.len);
    st->w.buf = NULL;
    st->w.len = 0;
    size_t cap = 0;
    char *b = NULL;
    switch (stream_block_get(st->s, &b, &cap)) {
    case STREAM_GET_OK:
        jsonw_init_fixed(&st->w, b, cap);
        return 0;
    case STREAM_GET_FULL:
        return EMIT_PARKED;
    default:
        return -ECANCELED;
    }
}

static int emit_primes(void *arg, const uint64_t *primes, size_t n)
{
    struct emit_state *st = arg;
    char sep = st->text ? '\n' : ',';
    while (n > 0) {
        size_t k = jsonw_u64_items(&st->w, primes, n, sep, &st->need_sep);
        primes += k;
        n -= k;
        st->count += k;
        if (n > 0) {
            int r = next_block(st);
            if (r == EMIT_PARKED) st->next = primes[0]; /* the first prime not sent */
            if (r != 0) return r;
        }
    }
    return 0;
}

/* Append literal text, moving to a fresh block when it does not fit (all or nothing). */
static int emit_text(struct emit_state *st, const char *s, size_t len)
{
    if (jsonw_raw(&st->w, s, len) == 0) return 0;
    st->w.overflow = false;
    int r = next_block(st);
    if (r != 0) return r;
    return jsonw_raw(&st->w, s, len);
}

/* Numbers after x whose primes fill about `bytes` of output: (bytes / bytes per prime) × ln x. */
static uint64_t stream_chunk_span(uint64_t x, size_t bytes)
{
    char digits[24];
    int d = snprintf(digits, sizeof digits, "%llu", (unsigned long long)x);
    double ln = x > 16 ? log((double)x) : 2.0;
    double span = (double)bytes / (double)(d + 1) * ln;
    return span < 4096.0 ? 4096 : (uint64_t)span;
}

/* api_stream for /v1/primes (api.c has checked cancel and w). */
static enum pool_outcome primes_stream(const struct api_ctx *ctx, struct api_query *q,
                                       struct api_worker *w, struct stream *s,
                                       const atomic_int *cancel)
{
    struct api_stream_pos *pos = &q->pos;
    struct emit_state st = {
        .s = s, .text = q->text, .need_sep = pos->need_sep, .count = pos->count};
    int r = next_block(&st);
    if (r == 0 && pos->phase == API_SP_HEAD) {
        if (!q->text) {
            char head[128];
            int hl = snprintf(head, sizeof head, "{\"from\":%llu,\"to\":%llu,\"primes\":[",
                              (unsigned long long)q->a, (unsigned long long)q->b);
            r = emit_text(&st, head, (size_t)hl); /* a fresh block: fits, never parks */
        }
        pos->phase = API_SP_PRIMES;
        pos->next = q->a;
    }
    /* The first chunk of a run is about what the free part of the buffer takes; chunks grow 4×
     * while the reader keeps up (the run goes on), up to the sieve's own chunk width (a window
     * at high ranges), to amortise per-call setup: above ~1e13 narrow chunks take the hybrid
     * path (Miller–Rabin on every survivor, ~37 ns a number) and only wide ones the full sieve
     * (~1 ns a number after a setup pass over π(√hi) primes). A park throws away at most the
     * chunk in hand, which the reader earned by taking the chunks before it. Measured on
     * /v1/primes [1e18, 1e18+1e8] to curl: 16× doubling 6.9 s, this (with stream.c's wait for a
     * reader that keeps pace) 1.2 s. A chunk past the hybrid's width pays a pass over all the
     * sieving primes whatever its width, so the first such chunk is a whole window: that
     * listing made 3 passes (chunks of 8.6M, 34M and 55M numbers) in 0.93 s, now 1 pass. */
    uint64_t span = stream_chunk_span(pos->next, stream_capacity(s) / 2);
    const uint64_t hybrid = sieve_hybrid_width(q->b);
    while (r == 0 && pos->phase == API_SP_PRIMES) {
        uint64_t hi = q->b - pos->next < span ? q->b : pos->next + span - 1;
        r = sieve_foreach(w->sieve, pos->next, hi, emit_primes, &st, cancel);
        if (r == EMIT_PARKED) pos->next = st.next;
        if (r != 0) break;
        if (hi == q->b) {
            pos->phase = API_SP_TAIL;
        } else {
            pos->next = hi + 1;
            uint64_t cap = sieve_chunk_width(pos->next, q->b);
            bool window = span >= cap / 4 || (hybrid && span * 4 > hybrid);
            span = window ? (span > cap ? span : cap) : span * 4;
        }
    }
    if (r == 0) { /* API_SP_TAIL: written whole, or again after a park */
        char tail[64];
        int tl = q->text ? (st.count ? snprintf(tail, sizeof tail, "\n") : 0)
                         : snprintf(tail, sizeof tail, "],\"count\":%llu}",
                                    (unsigned long long)st.count);
        if (tl > 0) r = emit_text(&st, tail, (size_t)tl);
    }
    if (r == EMIT_PARKED) {
        /* Everything written so far is committed (next_block); stop touching s now. */
        pos->need_sep = st.need_sep;
        pos->count = st.count;
        return POOL_PARKED;
    }
    if (r == 0) stream_block_commit(s, st.w.len);
    stream_finish(s, r == 0);
    if (r == 0) return POOL_DONE;
    int reason = cancel ? atomic_load_explicit(cancel, memory_order_acquire) : 0;
    if (reason == POOL_CANCEL_DEADLINE) return POOL_TIMEOUT;
    return POOL_CANCELLED;
}

const struct api_op_def api_op_primes = {
    .name = "primes",
    .params = {{"from", "the first number of the range", .required = true},
               {"to", "the last number of the range (at least from)", .required = true,
                .set = "max_list_range", .limit = API_LIMIT_WIDTH},
               {"format",
                "json (the default) or text; without it, Accept: text/plain asks for text",
                API_PARAM_WORD, .words = "json|text"}},
    .answer = "from:u64 to:u64 primes:u64[] count:u64",
    .text = "one prime per line, with format=text (or Accept: text/plain and no format)",
    .parse = primes_parse,
    .cost_ms = primes_cost_ms,
    .holds_memory = primes_holds_memory,
    .stream = primes_stream,
};
