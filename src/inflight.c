/* inflight.c — /debug/requests (see inflight.h): parse limit/format, take one snapshot from the
 * registered source into arrays allocated before it, render JSON or text after it.
 *
 * The snapshot is the only moment a server lock is held; everything here (parsing, allocation,
 * formatting) runs before or after it on the debug listener's own thread. The arrays are sized
 * by `limit` (≤ INFLIGHT_MAX_LIMIT rows of ~600 bytes) plus one entry per worker, so the memory
 * one call takes is bounded whatever the number of connections.
 */
#include "primed/inflight.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primed/errors.h"
#include "primed/jsonw.h"
#include "primed/numparse.h"

/* Set by server_create before the debug listener starts and cleared by server_destroy after it
 * stopped (thread creation and join order these against every reader). */
static inflight_source_fn source;
static void *source_arg;
static unsigned source_workers;

void inflight_set_source(inflight_source_fn fn, void *arg, unsigned workers)
{
    source = fn;
    source_arg = fn ? arg : NULL;
    source_workers = fn ? workers : 0;
}

static const char *const state_names[INFLIGHT__STATES] = {
    [INFLIGHT_RECEIVING] = "receiving", [INFLIGHT_HANDLING] = "handling",
    [INFLIGHT_QUEUED] = "queued",       [INFLIGHT_RUNNING] = "running",
    [INFLIGHT_STREAMING] = "streaming", [INFLIGHT_DRAINING] = "draining",
};

const char *inflight_state_name(enum inflight_state s)
{
    return (unsigned)s < INFLIGHT__STATES ? state_names[s] : "unknown";
}

const char *inflight_producer_name(enum inflight_producer p)
{
    switch (p) {
    case INFLIGHT_P_PRODUCING:
        return "producing";
    case INFLIGHT_P_PARKED:
        return "parked";
    case INFLIGHT_P_WAITING:
        return "waiting";
    default:
        return "none";
    }
}

static const char *worker_state_name(int s)
{
    return s == 1 ? "running" : s == 2 ? "helping" : "idle";
}

/* ---- parameters ---------------------------------------------------------------------------- */

/* 0, or an error rendered into resp (its return value in *rc). */
static int parse(const struct http_request *req, struct http_response *resp, size_t *limit,
                 bool *text, int *rc)
{
    struct http_params p = {.names = {"limit", "format"}};
    *rc = 0;
    if (http_params_check(req, &p, resp) != 0) return -1;
    const char *limit_arg = p.vals[0], *format_arg = p.vals[1];
    *limit = INFLIGHT_DEFAULT_LIMIT;
    if (limit_arg) {
        uint64_t v = 0;
        enum numparse_result r = numparse_u64(limit_arg, &v);
        if (r != NUMPARSE_OK || v < 1 || v > INFLIGHT_MAX_LIMIT) {
            *rc = errors_render(resp, PERR_BAD_PARAM, "limit", NULL,
                                "limit must be an integer in 1 … %d", INFLIGHT_MAX_LIMIT);
            return -1;
        }
        *limit = (size_t)v;
    }
    *text = false;
    if (format_arg) {
        if (strcmp(format_arg, "text") == 0) {
            *text = true;
        } else if (strcmp(format_arg, "json") != 0) {
            *rc =
                errors_render(resp, PERR_BAD_PARAM, "format", NULL, "format must be json or text");
            return -1;
        }
    }
    return 0;
}

/* ---- rendering ----------------------------------------------------------------------------- */

static void json_row(struct jsonw *w, const struct inflight_row *r)
{
    jsonw_lit(w, "{\"request_id\":");
    jsonw_str(w, r->request_id);
    jsonw_lit(w, ",\"client\":");
    jsonw_str(w, r->client);
    jsonw_lit(w, ",\"listener\":");
    jsonw_str(w, r->debug_listener ? "debug" : "main");
    jsonw_lit(w, ",\"method\":");
    jsonw_str(w, r->method);
    jsonw_lit(w, ",\"route\":");
    jsonw_str(w, r->path);
    jsonw_lit(w, ",\"params\":");
    jsonw_str(w, r->params);
    jsonw_lit(w, ",\"state\":");
    jsonw_str(w, inflight_state_name(r->state));
    if (r->state == INFLIGHT_STREAMING) {
        jsonw_lit(w, ",\"producer\":");
        jsonw_str(w, inflight_producer_name(r->producer));
    }
    jsonw_lit(w, ",\"worker\":");
    if (r->worker >= 0)
        jsonw_u64(w, (uint64_t)r->worker);
    else
        jsonw_lit(w, "null");
    jsonw_lit(w, ",\"age_ms\":");
    jsonw_u64(w, r->age_ms);
    jsonw_lit(w, ",\"bytes_sent\":");
    jsonw_u64(w, r->bytes_sent);
    if (r->state == INFLIGHT_STREAMING || r->state == INFLIGHT_DRAINING) {
        jsonw_lit(w, ",\"bytes_buffered\":");
        jsonw_u64(w, r->buffered);
    }
    if (r->chunks_total) {
        jsonw_lit(w, ",\"chunks_done\":");
        jsonw_u64(w, r->chunks_done);
        jsonw_lit(w, ",\"chunks_total\":");
        jsonw_u64(w, r->chunks_total);
    }
    jsonw_char(w, '}');
}

static void render_json(struct jsonw *w, const struct inflight_snapshot *s)
{
    jsonw_lit(w, "{\"total\":");
    jsonw_u64(w, s->total);
    jsonw_lit(w, ",\"shown\":");
    jsonw_u64(w, s->n);
    jsonw_lit(w, ",\"truncated\":");
    jsonw_bool(w, s->n < s->total);
    jsonw_lit(w, ",\"queue_depth\":");
    jsonw_u64(w, s->queue_depth);
    jsonw_lit(w, ",\"queue_capacity\":");
    jsonw_u64(w, s->queue_capacity);
    jsonw_lit(w, ",\"parked\":");
    jsonw_u64(w, s->parked);
    jsonw_lit(w, ",\"resume_depth\":");
    jsonw_u64(w, s->resume_depth);
    jsonw_lit(w, ",\"requests\":[");
    for (size_t i = 0; i < s->n; i++) {
        if (i) jsonw_char(w, ',');
        json_row(w, &s->rows[i]);
    }
    jsonw_lit(w, "],\"workers\":[");
    for (unsigned i = 0; i < s->nworkers; i++) {
        const struct inflight_worker *k = &s->workers[i];
        if (i) jsonw_char(w, ',');
        jsonw_lit(w, "{\"worker\":");
        jsonw_u64(w, i);
        jsonw_lit(w, ",\"state\":");
        jsonw_str(w, worker_state_name(k->state));
        jsonw_lit(w, ",\"request_id\":");
        if (k->row >= 0)
            jsonw_str(w, s->rows[k->row].request_id);
        else
            jsonw_lit(w, "null");
        if (k->chunks_total) {
            jsonw_lit(w, ",\"chunks_done\":");
            jsonw_u64(w, k->chunks_done);
            jsonw_lit(w, ",\"chunks_total\":");
            jsonw_u64(w, k->chunks_total);
        }
        jsonw_char(w, '}');
    }
    jsonw_lit(w, "]}\n");
}

/* Bounded printf into the writer (the text format's lines are short: rows are bounded). */
__attribute__((format(printf, 2, 3))) static void textf(struct jsonw *w, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    jsonw_raw(w, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void render_text(struct jsonw *w, const struct inflight_snapshot *s)
{
    textf(w,
          "%zu requests in flight (%zu shown, oldest first); queue %u/%u, parked %u, resumed %u\n",
          s->total, s->n, s->queue_depth, s->queue_capacity, s->parked, s->resume_depth);
    for (size_t i = 0; i < s->n; i++) {
        const struct inflight_row *r = &s->rows[i];
        char state[48];
        if (r->state == INFLIGHT_RUNNING && r->worker >= 0)
            snprintf(state, sizeof state, "running on worker %d", r->worker);
        else if (r->state == INFLIGHT_STREAMING && r->worker >= 0)
            snprintf(state, sizeof state, "streaming (producing on worker %d)", r->worker);
        else if (r->state == INFLIGHT_STREAMING)
            snprintf(state, sizeof state, "streaming (%s)", inflight_producer_name(r->producer));
        else
            snprintf(state, sizeof state, "%s", inflight_state_name(r->state));
        char chunks[48] = "";
        if (r->chunks_total)
            snprintf(chunks, sizeof chunks, " chunks %llu/%llu", (unsigned long long)r->chunks_done,
                     (unsigned long long)r->chunks_total);
        textf(w, "%8llu ms  %-34s %-6s %s%s%s  %s  %s  sent %llu B%s\n",
              (unsigned long long)r->age_ms, state, r->method, r->path, r->params[0] ? "?" : "",
              r->params, r->request_id[0] ? r->request_id : "-", r->client,
              (unsigned long long)r->bytes_sent, chunks);
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        const struct inflight_worker *k = &s->workers[i];
        textf(w, "worker %u: %s%s%s\n", i, worker_state_name(k->state),
              k->row >= 0 ? " request "
              : k->state  ? " an unlisted request"
                          : "",
              k->row >= 0 ? s->rows[k->row].request_id : "");
    }
}

int inflight_handle(const struct http_request *req, struct http_response *resp)
{
    size_t limit;
    bool text;
    int rc = 0;
    if (parse(req, resp, &limit, &text, &rc) != 0) return rc;
    if (!source) return errors_render(resp, PERR_UNAVAILABLE, NULL, NULL, "no server to inspect");
    struct inflight_snapshot snap = {.cap = limit, .wcap = source_workers};
    snap.rows = malloc(limit * sizeof *snap.rows);
    snap.workers = calloc(snap.wcap ? snap.wcap : 1, sizeof *snap.workers);
    struct jsonw w;
    jsonw_init_dynamic(&w, 4096 + limit * 1024 + (size_t)snap.wcap * 128);
    if (!snap.rows || !snap.workers) goto oom;
    if (source(source_arg, &snap) != 0) goto oom;
    if (text)
        render_text(&w, &snap);
    else
        render_json(&w, &snap);
    if (w.overflow) goto oom;
    size_t len = 0;
    char *body = jsonw_steal(&w, &len);
    if (!body) goto oom;
    http_response_body_owned(resp, 200, text ? HTTP_TEXT : HTTP_JSON, body, len);
    rc = 0;
    goto out;
oom:
    rc = errors_render(resp, PERR_INTERNAL, NULL, NULL, "out of memory");
out:
    jsonw_fini(&w);
    free(snap.workers);
    free(snap.rows);
    return rc;
}
