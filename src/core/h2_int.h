/*
 * h2_int: private types shared by h2.c (connection, I/O, submit API),
 * h2_cb.c (nghttp2 callbacks) and h2_limits.c (defaults, flood counters,
 * frame scanner, failure path). Nothing outside src/core/h2*.c includes
 * this file; the owner's contract is h2.h.
 *
 * Ownership: a struct h2_conn owns its nghttp2 session, every struct
 * h2_stream in its live list (and each stream's send ring and trailer
 * copy), and the scratch arrays. nghttp2 holds a stream's struct as
 * stream_user_data and as the data provider's source; both die with the
 * stream (on_stream_close) or with the connection (h2_free).
 */
#ifndef MESHD_CORE_H2_INT_H
#define MESHD_CORE_H2_INT_H

#include <nghttp2/nghttp2.h>

#include "core/h2.h"

/* Cap on earned WINDOW_UPDATE / PRIORITY credits (see h2_limits.c). */
#define H2_CREDIT_MAX 10000u
/* The most fields a submit can carry: the largest max_header_fields that
 * h2_limits_sanitize lets through, plus the pseudo-headers. */
#define H2_NV_MAX (10000u + 8u)

/* Stream flags, one word per stream. */
#define H2S_F_KNOWN      0x0001u /* owner knows it: on_stream_close owed */
#define H2S_F_BODY       0x0002u /* our head went out with a body to follow */
#define H2S_F_HEAD_SENT  0x0004u /* our final head (request/response) queued */
#define H2S_F_EOF        0x0008u /* h2_stream_end called (or end in head) */
#define H2S_F_EOF_DONE   0x0010u /* END_STREAM/trailers handed to nghttp2 */
#define H2S_F_DEFERRED   0x0020u /* our DATA item sleeps in nghttp2 */
#define H2S_F_WANT_WR    0x0040u /* a write came up short: on_writable owed */
#define H2S_F_LOCAL_RST  0x0080u /* reset asked by the owner */
#define H2S_F_IGNORE     0x0100u /* no more owner callbacks but close */
#define H2S_F_RST_SENT   0x0200u
#define H2S_F_RST_RECV   0x0400u
#define H2S_F_GOT_FINAL  0x0800u /* peer's opening (final) head seen */
#define H2S_F_DEAD       0x1000u /* owner already told it closed */
#define H2S_F_PENDING    0x2000u /* client: HEADERS not yet sent */
#define H2S_F_PEER       0x4000u /* opened by the peer */
#define H2S_F_STOP_AFTER 0x8000u /* RST(NO_ERROR) once our answer is out */

struct h2_trailers {
	size_t n;
	nghttp2_nv nv[];  /* followed by the name/value bytes */
};

struct h2_stream {
	struct h2_stream *prev, *next; /* conn's live list */
	int32_t id;
	uint32_t flags;                /* H2S_F_* */
	void *user;                    /* owner pointer */
	uint64_t opened_ms;
	size_t unconsumed;             /* delivered, not yet h2_consume'd */
	/* send ring: qlen bytes at q[qhead...] modulo qcap (a power of 2) */
	char *q;
	uint32_t qcap, qhead, qlen;
	struct h2_trailers *trailers;  /* copied at h2_stream_end */
};

/* A sliding-window event counter (HAProxy freq_ctr style): the previous
 * window's count weighs in proportionally to how much of it still overlaps
 * the last <window_ms>. */
struct h2_rate {
	uint64_t start;  /* start of the current window */
	uint32_t cur;
	uint32_t prev;
};

struct h2_conn {
	nghttp2_session *ng;
	enum h2_role role;
	struct h2_limits lim;
	struct h2_callbacks cb;
	void *ctx;
	nghttp2_mem ngmem;

	/* memory accounting (nghttp2 + h2 structures) */
	size_t mem_used, mem_peak;
	int mem_over;     /* an allocation was refused by the cap */
	int mem_oom;      /* an allocation failed in the C heap */
	size_t sendq_used, sendq_peak;

	/* output */
	struct buf *out;          /* set only inside h2_output */
	const uint8_t *pend;      /* rest of a chunk from mem_send2 */
	size_t pend_len;
	int space_freed;          /* send-queue room freed: on_writable due */
	int sendq_starved;        /* a write was cut by conn_send_buffer */

	/* failure: once set, nghttp2 is not driven any more; we send our own
	 * GOAWAY after whatever chunk was half written */
	int failed;
	uint32_t fail_code;
	const char *reason;       /* static string, see h2_close_reason */
	uint8_t ga[17];
	uint8_t ga_len, ga_off;
	int close_notified;       /* on_close ran */
	int depth;                /* public calls in progress (re-entrancy) */

	/* streams */
	struct h2_stream *streams; /* live list head */
	uint32_t nstreams;
	uint64_t streams_total;
	uint64_t peer_streams;
	uint64_t last_activity;
	uint64_t now;

	/* header block being received (blocks never interleave) */
	int32_t hb_id;
	uint32_t hb_bytes, hb_count, hb_n;
	int hb_overflow;
	uint64_t hb_junk;           /* decoded bytes dropped since the overflow */
	/* hb_rc and hb_fields exist only while a block is being collected
	 * (h2_hb_get makes them, h2_hb_release frees them): an idle
	 * connection does not hold ~5 KiB of arrays for its next block */
	nghttp2_rcbuf **hb_rc;     /* 2 per kept field */
	struct h2_header *hb_fields;
	uint32_t hb_cap;
	nghttp2_nv *nv;            /* submit scratch: h2_nv_scratch, shared */
	uint32_t nv_cap;

	/* frame scanner: sees every frame header before nghttp2 does */
	uint32_t sc_preface;       /* client magic bytes still to skip */
	uint32_t sc_left;          /* payload bytes of the current frame */
	uint8_t sc_hdr[9];
	uint8_t sc_have;

	/* flood accounting */
	struct h2_rate r_empty, r_ping, r_settings, r_wu, r_prio;
	struct h2_rate r_rst_recv, r_rst_sent, r_hdr_over, r_glitch;
	uint32_t empty_consec;
	uint32_t wu_credit, prio_credit;
	int ping_earned;
	uint32_t pings_out;
	uint64_t glitches, rst_sent, rst_recv, premature, header_overflows;

	int settings_received, settings_acked;
	int goaway_sent, goaway_recv, goaway_local;
	int graceful;              /* 1: notice + PING out, 2: final sent */
	uint32_t close_code;

	/* keepalive (h2_ping): one PING with h2_ka_opaque at a time */
	int ka_out;                /* submitted, its ACK not yet received */
	uint64_t ka_sent;          /* h2_clock when it was submitted */
	uint64_t ka_acked;         /* ACKs of keepalive PINGs received */
};

/* h2_limits.c */
void h2_limits_sanitize(struct h2_limits *lim);
int h2_rate_hit(struct h2_rate *r, uint64_t now, uint32_t window,
                uint32_t limit);
int h2_scan(struct h2_conn *c, const uint8_t *p, size_t n);
int h2_glitch(struct h2_conn *c);
int h2_fail(struct h2_conn *c, uint32_t code, const char *reason);
int h2_fail_ng(struct h2_conn *c, int ngerr);
const char *h2_reason_for_code(uint32_t code);
void h2_on_rst_sent(struct h2_conn *c, struct h2_stream *s, uint32_t code);
void h2_on_rst_recv(struct h2_conn *c, struct h2_stream *s);

/* h2_cb.c */
extern const uint8_t h2_ga_opaque[8];
extern const uint8_t h2_ka_opaque[8];
extern nghttp2_nv h2_nv_scratch[H2_NV_MAX];
void h2_cb_install(nghttp2_session_callbacks *cbs);
void h2_hb_release(struct h2_conn *c);

/* h2.c */
void *h2_alloc(struct h2_conn *c, size_t n);
void h2_dealloc(struct h2_conn *c, void *p);
struct h2_stream *h2_stream_new(struct h2_conn *c, int32_t id);
void h2_stream_free(struct h2_conn *c, struct h2_stream *s);
struct h2_stream *h2_stream_find(const struct h2_conn *c, int32_t id);
void h2_stream_closed(struct h2_conn *c, struct h2_stream *s, int reset,
                      uint32_t code);
nghttp2_ssize h2_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf,
                         size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud);
int h2_send_data_cb(nghttp2_session *ng, nghttp2_frame *frame,
                    const uint8_t *framehd, size_t len,
                    nghttp2_data_source *src, void *ud);

#endif
