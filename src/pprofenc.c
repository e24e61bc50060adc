/* pprofenc.c — a small writer for pprof's profile.proto, gzipped with zlib.
 *
 * Only what a sampled profile needs: sample_type, sample (location ids, value, string labels),
 * mapping, location (address or one line naming a function), function, string_table,
 * time_nanos, period_type, period, comment. Protobuf's wire format is tag varints and
 * length-delimited bytes, so sub-messages are written into a scratch buffer and copied behind
 * their length; the messages are a few KiB, so the copy costs nothing worth a two-pass sizer.
 * Strings and addresses are interned in open-addressing hash tables (a thread dump of 1,000
 * threads holds up to 64,000 addresses; linear search would be quadratic). Never used from a
 * signal handler.
 */
#include "pprofenc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "primed/buf.h"

/* ---- protobuf primitives ------------------------------------------ */

/* Every part of a profile is built in a buf (buf.h) with this ceiling: a thread dump's profile
 * is tens of KiB; a part past it fails the profile with -ENOMEM instead of growing further. */
#define PB_MAX (256u << 20)
#define PB_INIT                                                                                    \
    {                                                                                              \
        .max = PB_MAX                                                                              \
    }

static void put_varint(struct buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    buf_append(b, tmp, n);
}

enum { WT_VARINT = 0, WT_LEN = 2 };

static void put_key(struct buf *b, unsigned field, unsigned wt)
{
    put_varint(b, (uint64_t)field << 3 | wt);
}

static void put_uint(struct buf *b, unsigned field, uint64_t v)
{
    if (v == 0) return; /* proto3 default: omitted */
    put_key(b, field, WT_VARINT);
    put_varint(b, v);
}

static void put_bytes(struct buf *b, unsigned field, const void *p, size_t n)
{
    put_key(b, field, WT_LEN);
    put_varint(b, n);
    buf_append(b, p, n);
}

/* Append sub (a finished sub-message) as field `field` of b, then empty sub for reuse. */
static void put_msg(struct buf *b, unsigned field, struct buf *sub)
{
    if (buf_error(sub) && !buf_error(b)) b->err = buf_error(sub); /* a failed part fails b */
    put_bytes(b, field, sub->p, sub->len);
    buf_reset(sub);
}

/* ---- interning ----------------------------------------------------------------------------- */

/* Open addressing, linear probing, load ≤ 1/2. Keys are string ids (strings) or addresses
 * (locations); value = id. Slot value 0 means empty (ids start at 1; string id 0 is "" and is
 * never looked up). */
struct table {
    uint64_t *keys, *vals;
    size_t cap, n; /* cap a power of two */
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int table_grow(struct table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint64_t *k = calloc(cap, sizeof *k), *v = calloc(cap, sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->vals[i]) continue;
        size_t j = mix(t->keys[i]) & (cap - 1);
        while (v[j])
            j = (j + 1) & (cap - 1);
        k[j] = t->keys[i];
        v[j] = t->vals[i];
    }
    free(t->keys);
    free(t->vals);
    t->keys = k;
    t->vals = v;
    t->cap = cap;
    return 0;
}

struct pprofenc {
    /* strings: all NUL-terminated in `strs` (offsets in str_off), interned by hash of content */
    struct buf strs;
    size_t *str_off, nstr, str_cap;
    struct table str_idx; /* key: FNV-1a hash; collisions resolved by probing on content */
    struct table loc_idx; /* key: address */
    struct table fn_idx;  /* key: name's string id → function id */
    uint64_t nloc, nfn, nmap, map_cap;
    struct pprofenc_range {
        uint64_t start, limit;
    } * maps;
    struct buf samples, locations, functions, mappings, comments, scratch;
    int64_t type, unit;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The string table index of s (interning it). -1 on out-of-memory. */
static int64_t str_id(struct pprofenc *b, const char *s)
{
    if (!s || !*s) return 0;
    struct table *t = &b->str_idx;
    uint64_t h = fnv(s);
    if (t->cap) {
        for (size_t j = mix(h) & (t->cap - 1); t->vals[j]; j = (j + 1) & (t->cap - 1))
            if (t->keys[j] == h && strcmp((char *)b->strs.p + b->str_off[t->vals[j]], s) == 0)
                return (int64_t)t->vals[j];
    }
    if ((t->n + 1) * 2 > t->cap && table_grow(t) != 0) return -1;
    if (b->nstr == b->str_cap) {
        size_t cap = b->str_cap * 2;
        size_t *no = realloc(b->str_off, cap * sizeof *no);
        if (!no) return -1;
        b->str_off = no;
        b->str_cap = cap;
    }
    b->str_off[b->nstr] = b->strs.len;
    buf_append(&b->strs, s, strlen(s) + 1);
    if (buf_error(&b->strs)) return -1;
    size_t j = mix(h) & (t->cap - 1);
    while (t->vals[j])
        j = (j + 1) & (t->cap - 1);
    t->keys[j] = h;
    t->vals[j] = b->nstr;
    t->n++;
    return (int64_t)b->nstr++;
}

static uint64_t table_get(const struct table *t, uint64_t key)
{
    if (!t->cap) return 0;
    for (size_t j = mix(key) & (t->cap - 1); t->vals[j]; j = (j + 1) & (t->cap - 1))
        if (t->keys[j] == key) return t->vals[j];
    return 0;
}

static int table_put(struct table *t, uint64_t key, uint64_t val)
{
    if ((t->n + 1) * 2 > t->cap && table_grow(t) != 0) return -ENOMEM;
    size_t j = mix(key) & (t->cap - 1);
    while (t->vals[j])
        j = (j + 1) & (t->cap - 1);
    t->keys[j] = key;
    t->vals[j] = val;
    t->n++;
    return 0;
}

/* ---- builder ------------------------------------------------------------------------------- */

struct pprofenc *pprofenc_create(const char *type, const char *unit)
{
    struct pprofenc *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    struct buf *bufs[] = {&b->strs,     &b->samples,  &b->locations, &b->functions,
                          &b->mappings, &b->comments, &b->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_init(bufs[i], PB_MAX);
    b->str_cap = 64;
    b->str_off = malloc(b->str_cap * sizeof *b->str_off);
    if (!b->str_off) goto err;
    b->str_off[0] = 0;
    buf_append(&b->strs, "", 1); /* string_table[0] must be "" */
    b->nstr = 1;
    b->type = str_id(b, type);
    b->unit = str_id(b, unit);
    if (buf_error(&b->strs) || b->type < 0 || b->unit < 0) goto err;
    return b;
err:
    pprofenc_destroy(b);
    return NULL;
}

void pprofenc_destroy(struct pprofenc *b)
{
    if (!b) return;
    struct buf *bufs[] = {&b->strs,     &b->samples,  &b->locations, &b->functions,
                          &b->mappings, &b->comments, &b->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        buf_free(bufs[i]);
    struct table *ts[] = {&b->str_idx, &b->loc_idx, &b->fn_idx};
    for (size_t i = 0; i < 3; i++) {
        free(ts[i]->keys);
        free(ts[i]->vals);
    }
    free(b->str_off);
    free(b->maps);
    free(b);
}

int pprofenc_mapping(struct pprofenc *b, uint64_t start, uint64_t limit, uint64_t offset,
                     const char *filename)
{
    if (b->nmap == b->map_cap) {
        uint64_t cap = b->map_cap ? b->map_cap * 2 : 16;
        struct pprofenc_range *nm = realloc(b->maps, cap * sizeof *nm);
        if (!nm) return -ENOMEM;
        b->maps = nm;
        b->map_cap = cap;
    }
    int64_t fn = str_id(b, filename);
    if (fn < 0) return -ENOMEM;
    b->maps[b->nmap].start = start;
    b->maps[b->nmap].limit = limit;
    uint64_t id = ++b->nmap;
    struct buf *s = &b->scratch;
    put_uint(s, 1, id);
    put_uint(s, 2, start);
    put_uint(s, 3, limit);
    put_uint(s, 4, offset);
    put_uint(s, 5, (uint64_t)fn);
    put_msg(&b->mappings, 3, s);
    return buf_error(&b->mappings) ? -ENOMEM : 0;
}

uint64_t pprofenc_location_addr(struct pprofenc *b, uint64_t addr)
{
    uint64_t id = table_get(&b->loc_idx, addr);
    if (id) return id;
    id = ++b->nloc;
    if (table_put(&b->loc_idx, addr, id) != 0) return 0;
    uint64_t map = 0;
    for (uint64_t i = 0; i < b->nmap && !map; i++) /* a few dozen objects: linear is fine */
        if (addr >= b->maps[i].start && addr < b->maps[i].limit) map = i + 1;
    struct buf *s = &b->scratch;
    put_uint(s, 1, id);
    put_uint(s, 2, map);
    put_uint(s, 3, addr);
    put_msg(&b->locations, 4, s);
    return buf_error(&b->locations) ? 0 : id;
}

uint64_t pprofenc_location_name(struct pprofenc *b, const char *name)
{
    int64_t sid = str_id(b, name);
    if (sid <= 0) return 0;
    uint64_t fid = table_get(&b->fn_idx, (uint64_t)sid);
    if (!fid) {
        fid = ++b->nfn;
        if (table_put(&b->fn_idx, (uint64_t)sid, fid) != 0) return 0;
        struct buf *s = &b->scratch;
        put_uint(s, 1, fid);
        put_uint(s, 2, (uint64_t)sid);
        put_uint(s, 3, (uint64_t)sid);
        put_msg(&b->functions, 5, s);
    }
    /* A location per call: these are rare (one per unanswered thread group). */
    uint64_t id = ++b->nloc;
    struct buf *s = &b->scratch, line = PB_INIT;
    put_uint(&line, 1, fid);
    put_uint(s, 1, id);
    put_msg(s, 4, &line);
    buf_free(&line);
    put_msg(&b->locations, 4, s);
    return buf_error(&b->locations) ? 0 : id;
}

int pprofenc_sample(struct pprofenc *b, const uint64_t *locs, size_t nlocs, int64_t value,
                    const struct pprofenc_label *labels, size_t nlabels)
{
    struct buf s = PB_INIT, packed = PB_INIT, lab = PB_INIT;
    for (size_t i = 0; i < nlocs; i++)
        put_varint(&packed, locs[i]);
    put_bytes(&s, 1, packed.p, packed.len);
    buf_reset(&packed);
    put_varint(&packed, (uint64_t)value);
    put_bytes(&s, 2, packed.p, packed.len);
    int rc = 0;
    for (size_t i = 0; i < nlabels; i++) {
        int64_t k = str_id(b, labels[i].key), v = str_id(b, labels[i].str);
        if (k < 0 || v < 0) {
            rc = -ENOMEM;
            break;
        }
        put_uint(&lab, 1, (uint64_t)k);
        put_uint(&lab, 2, (uint64_t)v);
        put_msg(&s, 3, &lab);
    }
    if (rc == 0) {
        if (!buf_error(&s)) s.err = buf_error(&packed) ? buf_error(&packed) : buf_error(&lab);
        put_msg(&b->samples, 2, &s);
        if (buf_error(&b->samples)) rc = -ENOMEM;
    }
    buf_free(&s);
    buf_free(&packed);
    buf_free(&lab);
    return rc;
}

int pprofenc_comment(struct pprofenc *b, const char *text)
{
    int64_t id = str_id(b, text);
    if (id < 0) return -ENOMEM;
    put_uint(&b->comments, 13, (uint64_t)id);
    return buf_error(&b->comments) ? -ENOMEM : 0;
}

static int gzip(const unsigned char *in, size_t n, char **out, size_t *len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip header and trailer, as pprof expects */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    size_t cap = deflateBound(&z, n);
    unsigned char *o = malloc(cap);
    if (!o) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = o;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    size_t done = cap - z.avail_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(o);
        return -ENOMEM;
    }
    *out = (char *)o;
    *len = done;
    return 0;
}

int pprofenc_finish(struct pprofenc *b, int64_t time_nanos, char **out, size_t *len)
{
    struct buf m = PB_INIT, vt = PB_INIT;
    put_uint(&vt, 1, (uint64_t)b->type);
    put_uint(&vt, 2, (uint64_t)b->unit);
    put_bytes(&m, 1, vt.p, vt.len); /* sample_type */
    buf_append(&m, b->samples.p, b->samples.len);
    buf_append(&m, b->mappings.p, b->mappings.len);
    buf_append(&m, b->locations.p, b->locations.len);
    buf_append(&m, b->functions.p, b->functions.len);
    for (size_t i = 0; i < b->nstr; i++) {
        const char *s = (const char *)b->strs.p + b->str_off[i];
        put_bytes(&m, 6, s, strlen(s));
    }
    put_uint(&m, 9, (uint64_t)time_nanos);
    put_bytes(&m, 11, vt.p, vt.len); /* period_type */
    put_uint(&m, 12, 1);             /* period */
    buf_append(&m, b->comments.p, b->comments.len);
    buf_free(&vt);
    int rc = -ENOMEM;
    bool oom = buf_error(&m) || buf_error(&vt) || buf_error(&b->samples) ||
               buf_error(&b->mappings) || buf_error(&b->locations) || buf_error(&b->functions) ||
               buf_error(&b->comments) || buf_error(&b->strs);
    if (!oom) rc = gzip((const unsigned char *)m.p, m.len, out, len);
    buf_free(&m);
    return rc;
}
