/* http.c — the few helpers that fill a server-independent struct http_response.
 *
 * A response owns its body unless body_static is set; replacing a body frees the old owned one,
 * so a handler may overwrite an earlier answer (e.g. an error after a partial render) without
 * leaking. Nothing here knows about libmicrohttpd.
 */
#include "primed/http.h"

#include "primed/errors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void http_response_init(struct http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->status = 500;
    resp->content_type = HTTP_TEXT;
}

static void drop_body(struct http_response *resp)
{
    if (resp->body != NULL && !resp->body_static) free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->body_static = false;
}

void http_response_fini(struct http_response *resp)
{
    if (resp == NULL) return;
    drop_body(resp);
    resp->nheaders = 0;
}

int http_response_header(struct http_response *resp, const char *name, const char *value)
{
    if (resp->nheaders >= HTTP_MAX_EXTRA_HEADERS) return -ENOSPC;
    struct http_header *h = &resp->headers[resp->nheaders++];
    h->name = name;
    size_t n = value != NULL ? strnlen(value, HTTP_HEADER_VALUE_MAX - 1) : 0;
    if (n > 0) memcpy(h->value, value, n);
    h->value[n] = '\0';
    return 0;
}

int http_response_body(struct http_response *resp, int status, const char *content_type,
                       const char *buf, size_t len)
{
    /* +1 keeps the body NUL-terminated for handlers and tests that treat it as a string. */
    char *copy = malloc(len + 1);
    if (copy == NULL) return -ENOMEM;
    if (len > 0) memcpy(copy, buf, len);
    copy[len] = '\0';
    drop_body(resp);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = copy;
    resp->body_len = len;
    return 0;
}

void http_response_static(struct http_response *resp, int status, const char *content_type,
                          const char *buf, size_t len)
{
    drop_body(resp);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = (char *)buf; /* never written or freed: body_static */
    resp->body_len = len;
    resp->body_static = true;
}

void http_response_body_owned(struct http_response *resp, int status, const char *content_type,
                              char *buf, size_t len)
{
    drop_body(resp);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = buf; /* owned from here on */
    resp->body_len = len;
}

/* ---- query parameters ---------------------------------------------------------------------- */

static void params_collect(void *arg, const char *name, const char *value)
{
    struct http_params *p = arg;
    for (int i = 0; i < HTTP_MAX_PARAMS && p->names[i]; i++) {
        if (strcmp(p->names[i], name) != 0) continue;
        if (p->vals[i] && !p->duplicate) p->duplicate = p->names[i];
        p->vals[i] = value ? value : "";
        return;
    }
    if (!p->unknown) p->unknown = name;
}

int http_params_check(const struct http_request *req, struct http_params *p,
                      struct http_response *resp)
{
    if (req->each_arg) req->each_arg(req, params_collect, p);
    if (p->unknown) {
        errors_render(resp, PERR_UNKNOWN_PARAM, p->unknown, NULL, "unknown parameter '%.64s'",
                      p->unknown);
        return -1;
    }
    if (p->duplicate) {
        errors_render(resp, PERR_BAD_PARAM, p->duplicate, NULL, "parameter '%s' given twice",
                      p->duplicate);
        return -1;
    }
    return 0;
}
