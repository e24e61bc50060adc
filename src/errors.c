/* errors.c — the one table of client-visible errors and its JSON rendering.
 *
 * Every error response is {"error":{"code":…,"message":…,"param":…}} with the status from this
 * table; no other module picks an error status. Rendering never fails visibly: if the body
 * cannot be allocated the response falls back to a static 500 body that needs no memory.
 */
#include "primed/errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "primed/http.h"
#include "primed/jsonw.h"

#define A PERR_ON_API
#define D PERR_ON_DEBUG
#define BODY PERR_ON_BODY
#define ANY 0 /* any route */
static const struct primed_error_info error_table[PERR__COUNT] = {
    [PERR_BAD_PARAM] = {400, "bad_parameter", "a parameter has an invalid value", A | D},
    [PERR_MISSING_PARAM] = {400, "missing_parameter", "a required parameter is missing", A},
    [PERR_UNKNOWN_PARAM] = {400, "unknown_parameter", "unknown parameter", A | D},
    [PERR_LIMIT_EXCEEDED] = {400, "limit_exceeded", "the request exceeds a configured limit", A},
    [PERR_BAD_REQUEST] = {400, "bad_request", "the request line or a header is malformed", ANY},
    [PERR_BAD_JSON] = {400, "bad_json", "the request body is not the JSON expected", BODY},
    [PERR_UNAUTHORIZED] = {401, "unauthorized", "a valid debug token is required", D},
    [PERR_NOT_FOUND] = {404, "not_found", "no such resource", ANY},
    [PERR_NO_SUCH_PRIME] = {404, "no_such_prime",
                            "no prime satisfies the request within 0 ... 2^64-1", A},
    [PERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed", "method not allowed for this resource",
                                 ANY},
    [PERR_NOT_ACCEPTABLE] = {406, "not_acceptable",
                             "cannot produce a representation the client accepts", A},
    [PERR_REQUEST_TIMEOUT] = {408, "request_timeout",
                              "the request body did not arrive within body_timeout_ms", BODY},
    [PERR_CONFLICT] = {409, "conflict", "the request conflicts with an operation in progress", D},
    [PERR_BODY_TOO_LARGE] = {413, "body_too_large", "the request body is too large", BODY},
    [PERR_URI_TOO_LONG] = {414, "uri_too_long", "the request URI is too long", ANY},
    [PERR_UNSUPPORTED_MEDIA] = {415, "unsupported_media_type", "unsupported request content type",
                                BODY},
    [PERR_RATE_LIMITED] = {429, "rate_limited",
                           "this client has used its share of the service, retry later", A},
    [PERR_HEADERS_TOO_LARGE] = {431, "headers_too_large", "the request headers are too large", ANY},
    [PERR_INTERNAL] = {500, "internal", "internal error", ANY},
    [PERR_NOT_IMPLEMENTED] = {501, "not_implemented", "not implemented in this build", D},
    [PERR_OVERLOADED] = {503, "overloaded", "the server is overloaded, retry later", ANY},
    [PERR_UNAVAILABLE] = {503, "unavailable", "the server is not ready or is shutting down", ANY},
    [PERR_DEADLINE] = {504, "deadline_exceeded", "the request did not finish in time", A},
};
#undef A
#undef ANY
#undef D
#undef BODY

/* Served when even the error body cannot be allocated. */
static const char enomem_body[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

const struct primed_error_info *errors_info(enum primed_err e)
{
    if ((unsigned)e >= PERR__COUNT) e = PERR_INTERNAL;
    return &error_table[e];
}

int errors_status(enum primed_err e)
{
    return errors_info(e)->status;
}

const char *errors_code(enum primed_err e)
{
    return errors_info(e)->code;
}

/* Bounds: a message is one sentence, a param a query-parameter name; both are truncated (with
 * "...") rather than rejected so a hostile parameter name cannot grow an error body. */
#define ERRORS_MSG_MAX 512
#define ERRORS_PARAM_MAX 128
#define ERRORS_BODY_MAX (64 + 2 * ERRORS_MSG_MAX * 6 + ERRORS_PARAM_MAX * 6)

int errors_render(struct http_response *resp, enum primed_err e, const char *param,
                  const char *allow, const char *fmt, ...)
{
    const struct primed_error_info *info = errors_info(e);
    char msg[ERRORS_MSG_MAX];
    const char *m = info->message;
    size_t mlen = strlen(m);
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (n >= 0) {
            m = msg;
            mlen = (size_t)n;
            if (mlen >= sizeof(msg)) {
                /* cut at a character boundary and say so */
                size_t cut = sizeof(msg) - 4;
                while (cut > 0 && ((unsigned char)msg[cut] & 0xC0) == 0x80)
                    cut--;
                memcpy(msg + cut, "...", 4);
                mlen = cut + 3;
            }
        }
    }

    struct jsonw w;
    jsonw_init_dynamic(&w, ERRORS_BODY_MAX);
    jsonw_lit(&w, "{\"error\":{\"code\":");
    jsonw_str(&w, info->code);
    jsonw_lit(&w, ",\"message\":");
    jsonw_strn_trunc(&w, m, mlen, ERRORS_MSG_MAX * 6 + 2);
    if (param != NULL) {
        jsonw_lit(&w, ",\"param\":");
        jsonw_strn_trunc(&w, param, strnlen(param, ERRORS_PARAM_MAX + 1), ERRORS_PARAM_MAX);
    }
    jsonw_lit(&w, "}}");

    if (w.overflow) {
        jsonw_fini(&w);
        http_response_static(resp, 500, HTTP_JSON, enomem_body, sizeof(enomem_body) - 1);
        return -ENOMEM;
    }
    size_t len;
    char *body = jsonw_steal(&w, &len);
    http_response_body_owned(resp, info->status, HTTP_JSON, body, len);
    if (e == PERR_METHOD_NOT_ALLOWED && allow != NULL) http_response_header(resp, "Allow", allow);
    if (e == PERR_OVERLOADED || e == PERR_UNAVAILABLE)
        http_response_header(resp, "Retry-After", "1");
    return 0;
}
