/* log.c — one line per request and per lifecycle event on stderr, JSON or text.
 *
 * Each line is built in a fixed stack buffer and handed to a single write(2), so lines from
 * concurrent threads never interleave (LOG_LINE_MAX is PIPE_BUF: atomic even on a pipe) and a
 * log call never touches the heap. Over-long lines are cut at a field boundary or inside a
 * string value (never inside an escape) and marked "truncated":true, so every line stays valid
 * JSON. A mutex around stdio was the simpler design; it would serialise the workers on a lock
 * and allocate in stdio's buffers.
 */
#include "primed/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "primed/jsonw.h"

#define LOG_LINE_MAX 4096 /* == PIPE_BUF on Linux */
#define LOG_TAIL 32       /* kept free for ,"truncated":true}\n */

/* Written by log_init (normally once, before threads start); read by every logging thread.
 * Relaxed is enough: a reader seeing the old level for a moment logs or skips one line. */
static atomic_int log_min_level = LOG_INFO;
static atomic_int log_fmt = LOG_FORMAT_JSON;

void log_init(enum log_level level, enum log_format format)
{
    atomic_store_explicit(&log_min_level, (int)level, memory_order_relaxed);
    atomic_store_explicit(&log_fmt, (int)format, memory_order_relaxed);
}

int log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&log_min_level, memory_order_relaxed);
}

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_DEBUG:
        return "debug";
    case LOG_INFO:
        return "info";
    case LOG_WARN:
        return "warn";
    case LOG_ERROR:
        return "error";
    }
    return "info";
}

/* Days since 1970-01-01 → proleptic Gregorian date. The usual era arithmetic: an era is 400
 * years (146097 days) and years are counted from March so the leap day ends the year. Done by
 * hand because glibc's gmtime_r takes the global tzset lock on every call, which would
 * serialise the request log. Valid for every time_t of years 1970…9999. */
static void civil_from_days(int64_t days, unsigned *y, unsigned *m, unsigned *d)
{
    days += 719468; /* 0000-03-01 → 1970-01-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);                       /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* March = 0 */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (unsigned)(yoe + era * 400 + (*m <= 2));
}

void log_format_time(const struct timespec *ts, char out[25])
{
    int64_t sec = ts->tv_sec < 0 ? 0 : (int64_t)ts->tv_sec;
    unsigned y, mo, d;
    civil_from_days(sec / 86400, &y, &mo, &d);
    unsigned sod = (unsigned)(sec % 86400);
    unsigned ms = (unsigned)(ts->tv_nsec / 1000000) % 1000;
    y %= 10000;
    unsigned f[] = {mo, d, sod / 3600, sod / 60 % 60, sod % 60};
    char *p = out;
    *p++ = (char)('0' + y / 1000);
    *p++ = (char)('0' + y / 100 % 10);
    *p++ = (char)('0' + y / 10 % 10);
    *p++ = (char)('0' + y % 10);
    static const char seps[] = "--T::";
    for (int i = 0; i < 5; i++) {
        *p++ = seps[i];
        *p++ = (char)('0' + f[i] / 10);
        *p++ = (char)('0' + f[i] % 10);
    }
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p = '\0';
}

static void format_ts(char out[25])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    log_format_time(&ts, out);
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return; /* nowhere left to report a logging failure */
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* A line under construction: text goes through w (bounded to LOG_LINE_MAX - LOG_TAIL), the
 * tail is appended directly into the reserved bytes by line_finish. */
struct line {
    char buf[LOG_LINE_MAX];
    struct jsonw w;
    bool json;
    bool truncated;
};

static bool text_plain(const char *v, size_t n);

static void line_start(struct line *l, enum log_level level, const char *event)
{
    char ts[25];
    format_ts(ts);
    jsonw_init_fixed(&l->w, l->buf, LOG_LINE_MAX - LOG_TAIL);
    l->json = atomic_load_explicit(&log_fmt, memory_order_relaxed) == LOG_FORMAT_JSON;
    l->truncated = false;
    const char *ln = level_name(level);
    size_t elen = strnlen(event, 128);
    if (l->json) {
        jsonw_lit(&l->w, "{\"ts\":\"");
        jsonw_raw(&l->w, ts, 24);
        jsonw_lit(&l->w, "\",\"level\":\"");
        jsonw_raw(&l->w, ln, strlen(ln));
        jsonw_lit(&l->w, "\",\"event\":");
        jsonw_strn_trunc(&l->w, event, elen, 2 * 128);
    } else {
        jsonw_raw(&l->w, ts, 24);
        jsonw_char(&l->w, ' ');
        jsonw_raw(&l->w, ln, strlen(ln));
        jsonw_char(&l->w, ' ');
        if (!text_plain(event, elen) || jsonw_raw(&l->w, event, elen) != 0)
            jsonw_strn_trunc(&l->w, event, elen, 2 * 128);
    }
}

/* True when a text-format value can be shown without quotes. */
static bool text_plain(const char *v, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=') return false;
    }
    return true;
}

/* Append key=value (text) or ,"key":"value" (JSON). Once a field does not fit, the line is
 * marked truncated and every later field is dropped. */
static void line_kv(struct line *l, const char *key, const char *val, size_t vlen)
{
    if (l->truncated) return;
    size_t save = l->w.len;
    int rc;
    if (l->json) {
        jsonw_char(&l->w, ',');
        jsonw_str(&l->w, key);
        rc = jsonw_char(&l->w, ':');
    } else {
        jsonw_char(&l->w, ' ');
        jsonw_raw(&l->w, key, strlen(key));
        rc = jsonw_char(&l->w, '=');
    }
    if (l->w.overflow || rc != 0 || l->w.cap - l->w.len < 8) {
        l->w.len = save;
        l->truncated = true;
        return;
    }
    if (val == NULL) {
        if (jsonw_lit(&l->w, "null") != 0) {
            l->w.len = save;
            l->truncated = true;
        }
        return;
    }
    if (!l->json && text_plain(val, vlen) && jsonw_raw(&l->w, val, vlen) == 0) return;
    rc = jsonw_strn_trunc(&l->w, val, vlen, l->w.cap - l->w.len);
    if (rc != 0) l->truncated = true;
}

static void line_kv_u64(struct line *l, const char *key, uint64_t v)
{
    char d[JSONW_U64_MAX];
    size_t n = jsonw_u64_format(d, v);
    if (l->truncated) return;
    size_t save = l->w.len;
    if (l->json) {
        jsonw_char(&l->w, ',');
        jsonw_str(&l->w, key);
        jsonw_char(&l->w, ':');
    } else {
        jsonw_char(&l->w, ' ');
        jsonw_raw(&l->w, key, strlen(key));
        jsonw_char(&l->w, '=');
    }
    if (jsonw_raw(&l->w, d, n) != 0 || l->w.overflow) {
        l->w.len = save;
        l->truncated = true;
    }
}

static void line_finish(struct line *l)
{
    char *p = l->buf + l->w.len; /* LOG_TAIL bytes past the writer's bound are ours */
    if (l->json) {
        if (l->truncated) {
            memcpy(p, ",\"truncated\":true", 17);
            p += 17;
        }
        *p++ = '}';
    } else if (l->truncated) {
        memcpy(p, " [truncated]", 12);
        p += 12;
    }
    *p++ = '\n';
    write_all(l->buf, (size_t)(p - l->buf));
}

void log_event(enum log_level level, const char *event, const char *msg, ...)
{
    if (!log_enabled(level)) return;
    struct line l;
    line_start(&l, level, event != NULL ? event : "event");
    if (msg != NULL) line_kv(&l, "msg", msg, strlen(msg));
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL) break;
        const char *v = va_arg(ap, const char *);
        line_kv(&l, k, v, v != NULL ? strlen(v) : 0);
    }
    va_end(ap);
    line_finish(&l);
}

static const char *or_dash(const char *s)
{
    return s != NULL ? s : "-";
}

void log_request(const struct log_request_rec *r)
{
    if (!log_enabled(LOG_INFO)) return;
    struct line l;
    line_start(&l, LOG_INFO, "request");
    const char *id = or_dash(r->request_id), *m = or_dash(r->method), *p = or_dash(r->path),
               *c = or_dash(r->client_addr);
    line_kv(&l, "request_id", id, strlen(id));
    line_kv(&l, "method", m, strlen(m));
    line_kv_u64(&l, "status", (uint64_t)(r->status > 0 ? r->status : 0));
    line_kv_u64(&l, "bytes", r->bytes);
    line_kv_u64(&l, "duration_us", r->duration_us);
    line_kv(&l, "client", c, strlen(c));
    /* The path comes last: it is the only client-sized field, so truncation costs nothing
     * else. */
    line_kv(&l, "path", p, strlen(p));
    line_finish(&l);
}

/* Request ids: splitmix64's finaliser over seed + n * golden for a process-wide counter n. The
 * finaliser is a bijection, so ids never repeat within a process; the random seed makes them
 * differ between processes. One relaxed fetch_add per id, no lock. */
static uint64_t rid_seed; /* written once under rid_once */
static pthread_once_t rid_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t rid_counter; /* every thread: fetch_add, relaxed (only uniqueness) */

static void rid_init(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 48);
    }
    rid_seed = s;
}

void log_new_request_id(char buf[17])
{
    static const char hex[] = "0123456789abcdef";
    pthread_once(&rid_once, rid_init);
    uint64_t n = atomic_fetch_add_explicit(&rid_counter, 1, memory_order_relaxed);
    uint64_t z = rid_seed + n * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    for (int i = 15; i >= 0; i--) {
        buf[i] = hex[z & 15];
        z >>= 4;
    }
    buf[16] = '\0';
}

int log_sanitize_request_id(const char *in, char *out, unsigned outlen)
{
    if (in == NULL || out == NULL) return -1;
    size_t n = 0;
    for (; in[n] != '\0'; n++) {
        char c = in[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= 64) return -1;
    }
    if (n == 0 || n + 1 > outlen) return -1;
    memcpy(out, in, n + 1);
    return 0;
}
