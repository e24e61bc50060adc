/* trace_export.c — a capture's rings as Chrome Trace Event Format JSON (the "JSON Object
 * Format": {"traceEvents":[…]}), which Perfetto's UI, chrome://tracing and speedscope open.
 *
 * Thread tracks: "M" thread_name metadata per thread, "X" complete events for spans (work a
 * thread did: they nest), "i" instants, "C" counters (the sampler's). A request's life is an
 * async track of its own ("b"/"e" nestable async events, one id per request): its phases follow
 * each other under one "request" span, so a request that waited shows its wait even though no
 * thread was busy with it. Times are CLOCK_MONOTONIC microseconds with ns decimals; otherData
 * gives the capture window in the same clock. Never fails but for memory; the text is bounded by
 * TRACE_JSON_PER_SLOT bytes per slot.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "primed/jsonw.h"
#include "trace_int.h"

/* The most JSON one slot can become: a request with every phase and its text escaped (6 bytes a
 * byte at worst: \u00XX). */
#define TRACE_JSON_PER_SLOT 2048
#define TRACE_JSON_PER_THREAD 256

struct exp {
    struct jsonw w;
    int pid;
    bool first;
    uint64_t async_id;
};

static void us(struct jsonw *w, uint64_t ns)
{
    char b[48];
    int n =
        snprintf(b, sizeof b, "%llu.%03u", (unsigned long long)(ns / 1000), (unsigned)(ns % 1000));
    jsonw_raw(w, b, (size_t)n);
}

/* ,{"ph":"X","name":"…","pid":P,"tid":T — the caller closes the object. */
static void head(struct exp *x, char ph, const char *name, const char *suffix, int tid)
{
    struct jsonw *w = &x->w;
    if (!x->first) jsonw_char(w, ',');
    x->first = false;
    jsonw_lit(w, "\n{\"ph\":\"");
    jsonw_char(w, ph);
    jsonw_lit(w, "\",\"name\":");
    if (suffix) {
        char b[96];
        snprintf(b, sizeof b, "%s %s", name ? name : "?", suffix);
        jsonw_str(w, b);
    } else {
        jsonw_str(w, name ? name : "?");
    }
    jsonw_lit(w, ",\"pid\":");
    jsonw_u64(w, (uint64_t)x->pid);
    jsonw_lit(w, ",\"tid\":");
    jsonw_u64(w, (uint64_t)tid);
}

static void ts_field(struct jsonw *w, const char *key, uint64_t ns)
{
    jsonw_char(w, ',');
    jsonw_str(w, key);
    jsonw_char(w, ':');
    us(w, ns);
}

/* ,"args":{…} from the record and its text. */
static void args(struct exp *x, const struct trace_view *v, uint64_t i)
{
    const struct trace_rec *r = &v->ring[i % v->cap].r;
    struct jsonw *w = &x->w;
    char text[TRACE_TEXT_MAX];
    size_t len = trace_text(v, i, text);
    jsonw_lit(w, ",\"args\":{");
    bool sep = false;
#define KEY(k)                                                                                     \
    do {                                                                                           \
        if (sep) jsonw_char(w, ',');                                                               \
        sep = true;                                                                                \
        jsonw_lit(w, "\"" k "\":");                                                                \
    } while (0)
    if (r->route) {
        KEY("route");
        jsonw_str(w, r->route);
    }
    if (r->ridlen) {
        KEY("request_id");
        jsonw_strn(w, text, r->ridlen);
    }
    if (r->plen || r->route) {
        KEY("params");
        jsonw_strn(w, text + r->ridlen, len - r->ridlen);
    }
    if (r->status) {
        KEY("status");
        jsonw_u64(w, (uint64_t)r->status);
        KEY("bytes");
        jsonw_u64(w, r->bytes);
    }
    if (r->chunk >= 0) {
        KEY("chunk");
        jsonw_u64(w, (uint64_t)r->chunk);
    }
    if (r->kind == TREC_REQUEST && r->wtid) {
        KEY("worker_tid");
        jsonw_u64(w, (uint64_t)r->wtid);
    }
#undef KEY
    jsonw_char(w, '}');
}

/* One nestable async event of request `id`. */
static void async_ev(struct exp *x, char ph, const char *name, int tid, uint64_t id, uint64_t ns)
{
    head(x, ph, name, NULL, tid);
    jsonw_lit(&x->w, ",\"cat\":\"request\",\"id\":");
    jsonw_u64(&x->w, id);
    ts_field(&x->w, "ts", ns);
}

/* A request's phases: "request" [received, done] holding received → queued → running →
 * answering/streaming, each only when both its ends are known and in order, then "done". */
static void request(struct exp *x, const struct trace_view *v, uint64_t i)
{
    const struct trace_rec *r = &v->ring[i % v->cap].r;
    uint64_t id = ++x->async_id, at[TRACE__PHASES];
    at[TRACE_RECEIVED] = r->ts;
    for (int k = 1; k < TRACE__PHASES; k++)
        at[k] = r->at[k - 1];
    uint64_t done = at[TRACE_DONE] > r->ts ? at[TRACE_DONE] : r->ts;
    async_ev(x, 'b', "request", v->tid, id, r->ts);
    args(x, v, i);
    jsonw_char(&x->w, '}');
    static const char *const names[TRACE__PHASES] = {"received", "queued", "running", NULL, NULL};
    uint64_t from = r->ts;
    for (int k = TRACE_RECEIVED; k < TRACE_DONE; k++) {
        const char *name = names[k];
        if (k == TRACE_RAN) name = (r->flags & TREC_F_STREAM) ? "streaming" : "answering";
        uint64_t start = k == TRACE_RECEIVED ? r->ts : at[k];
        uint64_t end = done;
        for (int j = k + 1; j < TRACE_DONE && end == done; j++)
            if (at[j]) end = at[j];
        if (!start || start < from || end < start) continue;
        async_ev(x, 'b', name, v->tid, id, start);
        jsonw_char(&x->w, '}');
        async_ev(x, 'e', name, v->tid, id, end);
        jsonw_char(&x->w, '}');
        from = end;
    }
    async_ev(x, 'n', "done", v->tid, id, done);
    jsonw_char(&x->w, '}');
    async_ev(x, 'e', "request", v->tid, id, done);
    jsonw_char(&x->w, '}');
}

static void event(struct exp *x, const struct trace_view *v, uint64_t i)
{
    const struct trace_rec *r = &v->ring[i % v->cap].r;
    struct jsonw *w = &x->w;
    switch (r->kind) {
    case TREC_SPAN:
        head(x, 'X', r->name, r->route, v->tid);
        ts_field(w, "ts", r->ts);
        ts_field(w, "dur", r->at[0] - r->ts);
        args(x, v, i);
        break;
    case TREC_INSTANT:
        head(x, 'i', r->name, NULL, v->tid);
        jsonw_lit(w, ",\"s\":\"t\"");
        ts_field(w, "ts", r->ts);
        args(x, v, i);
        break;
    case TREC_COUNTER:
        head(x, 'C', r->name, NULL, v->tid);
        ts_field(w, "ts", r->ts);
        jsonw_lit(w, ",\"args\":{\"value\":");
        jsonw_u64(w, r->at[0]);
        jsonw_char(w, '}');
        break;
    case TREC_REQUEST:
        request(x, v, i);
        return;
    default:
        return;
    }
    jsonw_char(w, '}');
}

/* The whole events of one ring, oldest first: a continuation whose first slot was overwritten
 * is skipped, and so is an event whose continuations are not all there. */
static void ring(struct exp *x, const struct trace_view *v)
{
    uint64_t i = v->head > v->cap ? v->head - v->cap : 0;
    while (i < v->head) {
        const struct trace_rec *r = &v->ring[i % v->cap].r;
        if (r->kind == TREC_CONT) {
            i++;
            continue;
        }
        if (i + r->ncont >= v->head) break;
        event(x, v, i);
        i += 1u + r->ncont;
    }
}

int trace_export(const struct trace_view *v, size_t n, const struct trace_export_info *info,
                 char **out, size_t *len)
{
    size_t slots = 0;
    for (size_t k = 0; k < n; k++)
        slots += (size_t)(v[k].head < v[k].cap ? v[k].head : v[k].cap);
    struct exp x = {.pid = info->pid, .first = true};
    jsonw_init_dynamic(&x.w, 4096 + n * TRACE_JSON_PER_THREAD + slots * TRACE_JSON_PER_SLOT);
    jsonw_lit(&x.w, "{\"traceEvents\":[");
    head(&x, 'M', "process_name", NULL, 0);
    jsonw_lit(&x.w, ",\"args\":{\"name\":\"primed\"}}");
    for (size_t k = 0; k < n; k++) {
        head(&x, 'M', "thread_name", NULL, v[k].tid);
        jsonw_lit(&x.w, ",\"args\":{\"name\":");
        jsonw_str(&x.w, v[k].name);
        jsonw_lit(&x.w, "}}");
    }
    for (size_t k = 0; k < n; k++)
        ring(&x, &v[k]);
    jsonw_lit(&x.w, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"clock\":\"CLOCK_MONOTONIC\"");
    ts_field(&x.w, "capture_start_us", info->t0);
    ts_field(&x.w, "capture_end_us", info->t1);
    jsonw_lit(&x.w, ",\"dropped_events\":");
    jsonw_u64(&x.w, info->dropped);
    jsonw_lit(&x.w, ",\"buffer_bytes\":");
    jsonw_u64(&x.w, info->buffer_bytes);
    jsonw_lit(&x.w, "}}\n");
    *out = x.w.overflow ? NULL : jsonw_steal(&x.w, len);
    jsonw_fini(&x.w);
    return *out ? 0 : -ENOMEM;
}
