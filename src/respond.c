/* respond.c — answers, the other half of the libmicrohttpd adapter: an http_response or a
 * stream into a libmicrohttpd response with the common headers, error answers from the one
 * table, the raw answer the watcher writes while a body is still arriving, and the
 * X-Forwarded-For lines admission reads.
 *
 * Its callers (dispatch.c, watch.c) see only bools and http.h structs, never libmicrohttpd.
 */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "admission.h"
#include "primed/errors.h"
#include "primed/http.h"
#include "primed/stream.h"
#include "server_int.h"

/* Bytes libmicrohttpd asks the stream reader for at once (its write buffer per call). */
#define STREAM_READ_BLOCK (32u * 1024)

/* ---- responses ----------------------------------------------------------------------------- */

static void add_header(void *m, const char *name, const char *value)
{
    MHD_add_response_header(m, name, value);
}

static void add_common_headers(struct req *r, struct MHD_Response *m, const char *ctype)
{
    admission_headers(&r->adm, add_header, m);
    if (ctype) MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(m, "X-Request-Id", r->request_id);
    MHD_add_response_header(m, "X-Content-Type-Options", "nosniff");
    if (atomic_load_explicit(&r->srv->draining, memory_order_relaxed))
        MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Every 429 says when to come back. One built without a Retry-After (a metered request stopped
 * for using more CPU than its price, answered by the worker) gets one from the client's bucket
 * and what the request used, which settlement will charge. */
static void ensure_retry_after(struct req *r, struct http_response *hr)
{
    if (hr->status != 429) return;
    for (int i = 0; i < hr->nheaders; i++)
        if (strcasecmp(hr->headers[i].name, "Retry-After") == 0) return;
    char ra[24];
    snprintf(ra, sizeof ra, "%llu",
             (unsigned long long)admission_retry_after_s(&r->srv->adm, &r->adm,
                                                         pool_job_cpu_ns(&r->job)));
    http_response_header(hr, "Retry-After", ra);
}

/* Queue hr (its body moves to libmicrohttpd). */
bool req_queue_http(struct req *r, struct http_response *hr)
{
    ensure_retry_after(r, hr);
    struct MHD_Response *m;
    if (hr->body == NULL || hr->body_len == 0) {
        m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else if (hr->body_static) {
        m = MHD_create_response_from_buffer(hr->body_len, hr->body, MHD_RESPMEM_PERSISTENT);
    } else {
        m = MHD_create_response_from_buffer(hr->body_len, hr->body, MHD_RESPMEM_MUST_FREE);
        if (m) hr->body = NULL; /* libmicrohttpd frees it */
    }
    if (!m) return false;
    add_common_headers(r, m, hr->content_type);
    for (int i = 0; i < hr->nheaders; i++)
        MHD_add_response_header(m, hr->headers[i].name, hr->headers[i].value);
    r->status = hr->status;
    /* Relaxed: a counter; the I/O thread (here, stream_reader) writes, req_finish on the same
     * thread and the /debug/requests snapshot read. */
    if (strcmp(r->method, "HEAD") != 0)
        atomic_store_explicit(&r->bytes, hr->body_len, memory_order_relaxed);
    set_phase(r, PH_DONE);
    bool ret = MHD_queue_response(r->conn, (unsigned)hr->status, m) == MHD_YES;
    MHD_destroy_response(m);
    return ret;
}

bool req_queue_error(struct req *r, enum primed_err e, const char *param, const char *allow,
                     const char *msg)
{
    struct http_response hr;
    http_response_init(&hr);
    if (msg)
        errors_render(&hr, e, param, allow, "%s", msg);
    else
        errors_render(&hr, e, param, allow, NULL);
    bool ret = req_queue_http(r, &hr);
    http_response_fini(&hr);
    return ret;
}

/* ---- streams ------------------------------------------------------------------------------- */

/* Stream park: called by stream_read with the stream lock held (I/O thread). */
static void req_park(void *arg)
{
    struct req *r = arg;
    pthread_mutex_lock(&r->mu);
    /* Read under r->mu: either the sweep saw this request suspended, or this sees the flag.
     * Not suspending leaves stream_reader to be called again, and it then ends the answer. */
    if (atomic_load_explicit(&r->srv->abandon, memory_order_relaxed)) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    req_suspend_locked(r);
    pthread_mutex_unlock(&r->mu);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct req *r = cls;
    size_t n = 0;
    if (atomic_load_explicit(&r->srv->abandon, memory_order_acquire))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    switch (stream_read(r->stream, buf, max, &n, req_park, r)) {
    case STREAM_DATA:
        atomic_fetch_add_explicit(&r->bytes, n, memory_order_relaxed);
        return (ssize_t)n;
    case STREAM_EMPTY:
        return 0; /* suspended by req_park; the producer resumes us */
    case STREAM_EOF:
        return MHD_CONTENT_READER_END_OF_STREAM;
    default:
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void stream_reader_free(void *cls)
{
    req_unref(cls);
}

bool req_queue_stream(struct req *r)
{
    struct MHD_Response *m = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_READ_BLOCK, stream_reader, r, stream_reader_free);
    if (!m) return req_queue_error(r, PERR_INTERNAL, NULL, NULL, NULL);
    req_ref(r); /* the reader's reference, dropped by stream_reader_free */
    add_common_headers(r, m, api_stream_content_type(&r->query));
    r->status = 200;
    set_phase(r, PH_DONE);
    bool ret = MHD_queue_response(r->conn, MHD_HTTP_OK, m) == MHD_YES;
    MHD_destroy_response(m);
    return ret;
}

/* HEAD of a streamed list: the headers a GET would get, and no body, without creating a stream
 * or a job. A HEAD answer must never carry body bytes, yet libmicrohttpd 0.9.75 ends a chunked
 * (callback, unknown size) answer to HEAD with the terminator "0\r\n\r\n", which the next
 * response on a keep-alive connection then starts with (curl: "Received HTTP/0.9"; nginx with
 * upstream keep-alive: status "009"). A buffer answer has no such bytes; it says Content-Length:
 * 0, as the length of a list is not known before it is produced. */
bool req_queue_stream_head(struct req *r)
{
    struct http_response *hr = &r->resp;
    http_response_static(hr, 200, api_stream_content_type(&r->query), "", 0);
    return req_queue_http(r, hr);
}

/* ---- a body's abort ------------------------------------------------------------------------ */

/* The watcher answers a request whose body is in progress, on its own: libmicrohttpd 0.9.75
 * refuses to queue a response before the whole body is read (MHD_queue_response answers MHD_NO
 * in that state; tried), and a client that stopped sending never calls us again. So the answer
 * (from the error table, with the usual headers and Connection: close) is written to the socket
 * directly — libmicrohttpd writes nothing while it reads a body — and the socket is shut down
 * both ways, which its poll sees at once: it closes the connection and on_completed logs the
 * status. Best effort: a client whose receive window is closed gets only the close. The fd is
 * the connection's own: the request is in the in-flight list (under s->mu, held by the caller),
 * so on_completed has not run and libmicrohttpd has not closed the socket. r->mu held. */
void body_abort_locked(struct req *r, enum primed_err e, const char *msg)
{
    struct http_response hr;
    http_response_init(&hr);
    errors_render(&hr, e, NULL, NULL, "%s", msg);
    char head[1024];
    size_t n = (size_t)snprintf(head, sizeof head,
                                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                "X-Request-Id: %s\r\nX-Content-Type-Options: nosniff\r\n"
                                "Connection: close\r\n",
                                hr.status, MHD_get_reason_phrase_for((unsigned)hr.status),
                                hr.content_type, hr.body_len, r->request_id);
    for (int i = 0; i < hr.nheaders && n < sizeof head; i++)
        n += (size_t)snprintf(head + n, sizeof head - n, "%s: %s\r\n", hr.headers[i].name,
                              hr.headers[i].value);
    if (n + 2 < sizeof head) {
        memcpy(head + n, "\r\n", 2);
        struct iovec iov[2] = {{head, n + 2}, {hr.body, hr.body_len}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        ssize_t w = sendmsg(r->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) atomic_store_explicit(&r->bytes, hr.body_len, memory_order_relaxed);
    }
    shutdown(r->fd, SHUT_RDWR);
    atomic_store_explicit(&r->aborted, hr.status, memory_order_relaxed);
    http_response_fini(&hr);
}

/* ---- request headers ----------------------------------------------------------------------- */

/* Every X-Forwarded-For line joined with ", " (a proxy may append a line of its own rather than
 * extend the client's), keeping the rightmost bytes if they do not fit: that is the trusted end.
 * NULL when no proxy is trusted or there is no such header. */
#define XFF_MAX 1024
struct xff_buf {
    char s[XFF_MAX];
    size_t len;
};

static enum MHD_Result xff_it(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    struct xff_buf *x = cls;
    if (!value || strcasecmp(key, "X-Forwarded-For") != 0) return MHD_YES;
    size_t n = strlen(value), sep = x->len ? 2 : 0;
    if (n + sep >= XFF_MAX) { /* this line alone overflows: keep its tail */
        memcpy(x->s, value + n - (XFF_MAX - 1), XFF_MAX - 1);
        x->len = XFF_MAX - 1;
    } else {
        if (x->len + sep + n >= XFF_MAX) { /* drop the oldest (leftmost) bytes */
            size_t drop = x->len + sep + n - (XFF_MAX - 1);
            memmove(x->s, x->s + drop, x->len - drop);
            x->len -= drop;
        }
        if (sep) memcpy(x->s + x->len, ", ", 2);
        memcpy(x->s + x->len + sep, value, n);
        x->len += sep + n;
    }
    x->s[x->len] = '\0';
    return MHD_YES;
}

const char *req_forwarded_for(struct req *r)
{
    static _Thread_local struct xff_buf x; /* I/O thread; used before the next request */
    if (!admission_wants_forwarded_for(&r->srv->adm)) return NULL;
    x.len = 0;
    x.s[0] = '\0';
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, xff_it, &x);
    return x.len ? x.s : NULL;
}
