/* trace_int.h — the trace's record layout, shared by the recorder (trace.c) and the Chrome Trace
 * Event Format writer (trace_export.c). Internal, so beside the sources.
 */
#ifndef PRIMED_TRACE_INT_H
#define PRIMED_TRACE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "primed/trace.h"

/* Record kinds (the first byte of every slot). */
enum {
    TREC_SPAN = 'X',
    TREC_INSTANT = 'i',
    TREC_COUNTER = 'C',
    TREC_REQUEST = 'R',
    TREC_CONT = '+', /* more text of the record before it */
};

#define TRACE_SLOT_BYTES 128
#define TRACE_CONT_TEXT (TRACE_SLOT_BYTES - 1)
#define TRACE_MAX_CONT 2
#define TRACE_RID_MAX 64

#define TREC_F_STREAM 1 /* request: a streamed answer (its last phase is streaming) */

/* One event's first slot. Text is the request id (ridlen bytes) then the parameters (plen),
 * the first TRACE_REC_TEXT bytes here, the rest in ncont TREC_CONT slots that follow. */
struct trace_rec {
    uint8_t kind;
    uint8_t ncont;
    uint8_t ridlen;
    uint8_t plen;
    int16_t status;
    uint16_t flags;                 /* TREC_F_* */
    uint64_t ts;                    /* ns: a span's start, an instant's or a sample's time */
    uint64_t at[TRACE__PHASES - 1]; /* span: at[0] its end; request: queued … done; counter:
                                      at[0] the value */
    uint64_t bytes;
    int64_t chunk;
    const char *name;
    const char *route;
    int32_t wtid;  /* request: the worker that ran it, 0 = none */
    char text[44]; /* fills the slot: 128 bytes */
};
struct trace_cont {
    uint8_t kind;
    char text[TRACE_CONT_TEXT];
};
union trace_slot {
    struct trace_rec r;
    struct trace_cont c;
    char raw[TRACE_SLOT_BYTES];
};
_Static_assert(sizeof(union trace_slot) == TRACE_SLOT_BYTES, "a trace slot is 128 bytes");

#define TRACE_REC_TEXT (sizeof(((struct trace_rec *)0)->text))
#define TRACE_TEXT_MAX (TRACE_REC_TEXT + TRACE_MAX_CONT * TRACE_CONT_TEXT)

/* One thread's ring as the collector took it: slots [head - n, head) of ring[cap], in order. */
struct trace_view {
    int tid;
    char name[16];
    const union trace_slot *ring;
    uint64_t cap, head;
};

/* Copy the text of the event whose first slot is ring[i % cap] (its continuations follow)
 * into out[TRACE_TEXT_MAX]; returns its length. */
size_t trace_text(const struct trace_view *v, uint64_t i, char *out);

/* Render the views as {"traceEvents":[…],"displayTimeUnit":"ms","otherData":{…}}: thread_name
 * metadata for every view, then every whole event. t0, t1: the capture window (ns). Returns 0
 * with *out malloc'd, or -ENOMEM. */
struct trace_export_info {
    int pid;
    uint64_t t0, t1;
    uint64_t dropped;
    uint64_t buffer_bytes;
};
int trace_export(const struct trace_view *v, size_t n, const struct trace_export_info *info,
                 char **out, size_t *len);

#endif
