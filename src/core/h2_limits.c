/*
 * h2_limits: the protective half of h2 — default limits, sliding-window
 * flood counters, the frame scanner that sees every frame header before
 * nghttp2 does, glitch counting, and the failure path (our own GOAWAY).
 *
 * IMPLEMENTATION NOTES
 * Why a scanner of our own: nghttp2 skips its frame callbacks for frames it
 * ignores (DATA on a closed stream, unknown types, anything after a
 * connection error), so counting floods in callbacks would miss exactly
 * the frames an attacker chooses. The scanner walks the byte stream in
 * step with nghttp2 (frame header, then skip <length> payload bytes), never
 * copies a payload, and costs a few compares per frame. It also checks the
 * client magic itself so that garbage after a bad preface is reported as
 * "bad_preface" rather than as whatever flood it happens to resemble.
 *
 * "Earned" frames: a PING that follows a DATA or HEADERS frame we sent is
 * not counted (gRPC's keepalive enforcement rule; BDP pings are answers to
 * our data), nor are WINDOW_UPDATEs paid for by DATA frames we sent (Envoy's
 * rule: up to 10 per DATA frame), nor PRIORITY frames up to 10 per stream
 * the peer opened. What is left over is what an idle attacker can send.
 *
 * The failure path: h2_fail() freezes the session (nghttp2 is driven no
 * further) and prepares a 17-byte GOAWAY that h2_output sends after the
 * chunk it may have half written. It allocates nothing, so it works when
 * the memory cap is what failed.
 */
#include <errno.h>
#include <string.h>

#include "core/h2_int.h"

void h2_limits_default(struct h2_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_concurrent_streams = 100;
	lim->initial_window_size = 65535;
	lim->conn_window_size = 1u << 20;
	lim->max_frame_size = 16384;
	lim->max_header_list_size = 16384;
	lim->header_table_size = 4096;
	lim->max_header_fields = 100;
	lim->max_deflate_table_size = 4096;
	lim->max_continuations = 8;
	lim->max_settings_entries = 32;
	lim->stream_send_buffer = 64u << 10;
	lim->conn_send_buffer = 2u << 20;
	lim->mem_max = (size_t)4 << 20;
	lim->max_outbound_frames = 10000;
	lim->max_outbound_ack = 1000;
	lim->outbound_hwm = 64;
	lim->reset_burst = 1000;
	lim->reset_rate = 33;
	lim->premature_min_streams = 500;
	lim->premature_ms = 1000;
	lim->window_ms = 10000;
	lim->max_empty_frames = 1;
	lim->max_empty_window = 100;
	lim->max_ping = 100;
	lim->max_settings = 100;
	lim->max_window_update = 1000;
	lim->max_priority = 100;
	lim->max_rst_recv = 1000;
	lim->max_rst_sent = 100;
	lim->max_header_overflows = 10;
	lim->max_glitches = 1000;
}

static uint32_t h2_clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Brings every field into the range the protocol and the code accept. */
void h2_limits_sanitize(struct h2_limits *l)
{
	uint32_t p;

	l->max_concurrent_streams = h2_clamp(l->max_concurrent_streams, 1,
	                                     0x7fffffff);
	l->initial_window_size = h2_clamp(l->initial_window_size, 0,
	                                  0x7fffffff);
	l->conn_window_size = h2_clamp(l->conn_window_size, 65535, 0x7fffffff);
	l->max_frame_size = h2_clamp(l->max_frame_size, 16384, 16777215);
	l->max_header_list_size = h2_clamp(l->max_header_list_size, 1024,
	                                   1u << 24);
	l->header_table_size = h2_clamp(l->header_table_size, 0, 1u << 16);
	l->max_header_fields = h2_clamp(l->max_header_fields, 8, 10000);
	l->max_deflate_table_size = h2_clamp(l->max_deflate_table_size, 0,
	                                     1u << 16);
	l->max_continuations = h2_clamp(l->max_continuations, 1, 1000);
	l->max_settings_entries = h2_clamp(l->max_settings_entries, 7, 1000);
	/* the send ring is a power of two, at least 4 KiB */
	l->stream_send_buffer = h2_clamp(l->stream_send_buffer, 4096,
	                                 1u << 30);
	for (p = 4096; p <= l->stream_send_buffer / 2; p *= 2)
		;
	l->stream_send_buffer = p;
	if (l->conn_send_buffer < l->stream_send_buffer)
		l->conn_send_buffer = l->stream_send_buffer;
	if (l->mem_max < (64u << 10))
		l->mem_max = 64u << 10;
	l->max_outbound_ack = h2_clamp(l->max_outbound_ack, 1, 1u << 20);
	l->outbound_hwm = h2_clamp(l->outbound_hwm, 1, 1u << 20);
	if (l->max_outbound_frames < l->outbound_hwm)
		l->max_outbound_frames = l->outbound_hwm;
	if (l->window_ms == 0)
		l->window_ms = 1;
}

/*
 * Counts one event at <now> and returns 1 when the estimated count over the
 * last <window> ms exceeds <limit> (0 = never).
 */
int h2_rate_hit(struct h2_rate *r, uint64_t now, uint32_t window,
                uint32_t limit)
{
	uint64_t el, est;

	if (limit == 0)
		return 0;
	el = now > r->start ? now - r->start : 0;
	if (el >= window) {
		if (el >= 2 * (uint64_t)window) {
			r->prev = 0;
			r->start = now;
		} else {
			r->prev = r->cur;
			r->start += window;
		}
		r->cur = 0;
		el = now > r->start ? now - r->start : 0;
	}
	if (r->cur < UINT32_MAX)
		r->cur++;
	est = r->cur + (uint64_t)r->prev * (window - el) / window;
	return est > limit;
}

static const char *const h2_code_names[] = {
	"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR",
	"REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
	"ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
};

const char *h2_code_str(uint32_t code)
{
	if (code < sizeof(h2_code_names) / sizeof(h2_code_names[0]))
		return h2_code_names[code];
	return "UNKNOWN";
}

/* The close reason for a GOAWAY nghttp2 decided to send itself. */
const char *h2_reason_for_code(uint32_t code)
{
	switch (code) {
	case H2_NO_ERROR:           return "local_goaway";
	case H2_INTERNAL_ERROR:     return "internal_error";
	case H2_FLOW_CONTROL_ERROR: return "flow_control_error";
	case H2_SETTINGS_TIMEOUT:   return "settings_timeout";
	case H2_STREAM_CLOSED:      return "stream_closed";
	case H2_FRAME_SIZE_ERROR:   return "frame_size_error";
	case H2_COMPRESSION_ERROR:  return "compression_error";
	case H2_ENHANCE_YOUR_CALM:  return "enhance_your_calm";
	default:                    return "protocol_error";
	}
}

/*
 * Ends the connection: records <code> and <reason> (the first failure
 * wins), and prepares GOAWAY(last processed stream, <code>) for h2_output.
 * Returns the errno h2_feed reports: -ENOMEM for the memory cap, else
 * -EPROTO.
 */
int h2_fail(struct h2_conn *c, uint32_t code, const char *reason)
{
	int32_t last;

	if (c->failed)
		return c->mem_over || c->mem_oom ? -ENOMEM : -EPROTO;
	c->failed = 1;
	c->fail_code = code;
	c->reason = reason;
	c->close_code = code;
	c->goaway_sent = 1;
	last = c->ng ? nghttp2_session_get_last_proc_stream_id(c->ng) : 0;
	if (last < 0)
		last = 0;
	c->ga[0] = 0;
	c->ga[1] = 0;
	c->ga[2] = 8;
	c->ga[3] = NGHTTP2_GOAWAY;
	c->ga[4] = 0;
	memset(c->ga + 5, 0, 4);
	c->ga[9] = (uint8_t)((uint32_t)last >> 24) & 0x7f;
	c->ga[10] = (uint8_t)((uint32_t)last >> 16);
	c->ga[11] = (uint8_t)((uint32_t)last >> 8);
	c->ga[12] = (uint8_t)last;
	c->ga[13] = (uint8_t)(code >> 24);
	c->ga[14] = (uint8_t)(code >> 16);
	c->ga[15] = (uint8_t)(code >> 8);
	c->ga[16] = (uint8_t)code;
	c->ga_len = 17;
	c->ga_off = 0;
	return c->mem_over || c->mem_oom ? -ENOMEM : -EPROTO;
}

/* Maps a fatal nghttp2 return (from mem_recv2, mem_send2 or a submit) to a
 * failure. A callback failure means one of ours already called h2_fail. */
int h2_fail_ng(struct h2_conn *c, int ngerr)
{
	if (c->failed)
		return h2_fail(c, 0, NULL);
	if (c->mem_over)
		return h2_fail(c, H2_ENHANCE_YOUR_CALM, "memory");
	switch (ngerr) {
	case NGHTTP2_ERR_NOMEM:
		return h2_fail(c, H2_INTERNAL_ERROR, "memory");
	case NGHTTP2_ERR_FLOODED:
		return h2_fail(c, H2_ENHANCE_YOUR_CALM, "ack_flood");
	case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
		return h2_fail(c, H2_ENHANCE_YOUR_CALM, "continuation_flood");
	case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
		return h2_fail(c, H2_PROTOCOL_ERROR, "bad_preface");
	case NGHTTP2_ERR_CALLBACK_FAILURE:
		return h2_fail(c, H2_INTERNAL_ERROR, "callback");
	default:
		return h2_fail(c, H2_INTERNAL_ERROR, "internal_error");
	}
}

/* Counts one protocol anomaly; fails the connection (and returns -1) past
 * the glitch budget. */
int h2_glitch(struct h2_conn *c)
{
	c->glitches++;
	if (h2_rate_hit(&c->r_glitch, c->now, c->lim.window_ms,
	                c->lim.max_glitches)) {
		h2_fail(c, H2_ENHANCE_YOUR_CALM, "glitches");
		return -1;
	}
	return 0;
}

static int h2_flood(struct h2_conn *c, struct h2_rate *r, uint32_t limit,
                    const char *reason)
{
	if (!h2_rate_hit(r, c->now, c->lim.window_ms, limit))
		return 0;
	h2_fail(c, H2_ENHANCE_YOUR_CALM, reason);
	return -1;
}

/* Accounting for one received frame header, before nghttp2 sees it.
 * Returns -1 when the connection failed. */
static int h2_count_frame(struct h2_conn *c, uint8_t type, uint8_t flags,
                          uint32_t len)
{
	const struct h2_limits *l = &c->lim;
	int empty = 0;

	switch (type) {
	case NGHTTP2_DATA:
	case NGHTTP2_HEADERS:
		empty = len == 0 && !(flags & NGHTTP2_FLAG_END_STREAM);
		break;
	case NGHTTP2_CONTINUATION:
		empty = len == 0;
		break;
	case NGHTTP2_PRIORITY:
	case NGHTTP2_PRIORITY_UPDATE:
		if (c->prio_credit) {
			c->prio_credit--;
			break;
		}
		if (h2_flood(c, &c->r_prio, l->max_priority, "priority_flood"))
			return -1;
		break;
	case NGHTTP2_RST_STREAM:
		if (h2_flood(c, &c->r_rst_recv, l->max_rst_recv, "rst_flood"))
			return -1;
		break;
	case NGHTTP2_SETTINGS:
		if (flags & NGHTTP2_FLAG_ACK)
			break;
		if (h2_flood(c, &c->r_settings, l->max_settings,
		             "settings_flood"))
			return -1;
		break;
	case NGHTTP2_PING:
		if (flags & NGHTTP2_FLAG_ACK) {
			if (c->pings_out) {
				c->pings_out--;
				break;
			}
			if (h2_glitch(c))  /* an ACK nobody asked for */
				return -1;
			break;
		}
		if (c->ping_earned) {
			c->ping_earned = 0;
			break;
		}
		if (h2_flood(c, &c->r_ping, l->max_ping, "ping_flood"))
			return -1;
		break;
	case NGHTTP2_WINDOW_UPDATE:
		if (c->wu_credit) {
			c->wu_credit--;
			break;
		}
		if (h2_flood(c, &c->r_wu, l->max_window_update,
		             "window_update_flood"))
			return -1;
		break;
	case NGHTTP2_PUSH_PROMISE:
	case NGHTTP2_GOAWAY:
		break;
	default:
		/* unknown or unnegotiated extension: ignored by nghttp2, but
		 * still work for us */
		if (h2_glitch(c))
			return -1;
		break;
	}
	if (!empty) {
		c->empty_consec = 0;
		return 0;
	}
	if (++c->empty_consec > l->max_empty_frames && l->max_empty_frames) {
		h2_fail(c, H2_ENHANCE_YOUR_CALM, "empty_frames");
		return -1;
	}
	if (h2_flood(c, &c->r_empty, l->max_empty_window, "empty_frames"))
		return -1;
	return h2_glitch(c);
}

/*
 * Walks <n> received bytes in step with nghttp2: checks the client magic
 * (server role), then counts each frame header and skips its payload.
 * Returns 0, or -1 when a limit failed the connection (the bytes must then
 * not be given to nghttp2).
 */
int h2_scan(struct h2_conn *c, const uint8_t *p, size_t n)
{
	static const char magic[] = NGHTTP2_CLIENT_MAGIC;
	size_t i = 0, k;
	uint32_t len;

	if (c->sc_preface) {
		size_t off = NGHTTP2_CLIENT_MAGIC_LEN - c->sc_preface;

		k = n < c->sc_preface ? n : c->sc_preface;
		if (memcmp(p, magic + off, k) != 0) {
			h2_fail(c, H2_PROTOCOL_ERROR, "bad_preface");
			return -1;
		}
		c->sc_preface -= (uint32_t)k;
		i = k;
	}
	while (i < n) {
		if (c->sc_left) {
			k = n - i < c->sc_left ? n - i : c->sc_left;
			c->sc_left -= (uint32_t)k;
			i += k;
			continue;
		}
		k = 9u - c->sc_have;
		if (k > n - i)
			k = n - i;
		memcpy(c->sc_hdr + c->sc_have, p + i, k);
		c->sc_have += (uint8_t)k;
		i += k;
		if (c->sc_have < 9)
			break;
		c->sc_have = 0;
		len = (uint32_t)c->sc_hdr[0] << 16 | (uint32_t)c->sc_hdr[1] << 8 |
		      c->sc_hdr[2];
		c->sc_left = len;
		if (h2_count_frame(c, c->sc_hdr[3], c->sc_hdr[4], len))
			return -1;
	}
	return 0;
}

/*
 * A RST_STREAM left: count it against MadeYouReset unless the owner asked
 * for it. REFUSED_STREAM (a peer over our concurrency limit, often a race
 * at connection start) only counts as a glitch.
 */
void h2_on_rst_sent(struct h2_conn *c, struct h2_stream *s, uint32_t code)
{
	c->rst_sent++;
	if (s)
		s->flags |= H2S_F_RST_SENT;
	if (s && (s->flags & H2S_F_LOCAL_RST))
		return;
	if (h2_glitch(c))
		return;
	if (code == H2_REFUSED_STREAM)
		return;
	h2_flood(c, &c->r_rst_sent, c->lim.max_rst_sent, "made_you_reset");
}

/*
 * A RST_STREAM arrived for <s> (may be NULL). Server side, a stream the
 * peer opened and reset before any response and within premature_ms is
 * "premature"; when such streams pass half of at least
 * premature_min_streams, the connection is a Rapid Reset attacker.
 */
void h2_on_rst_recv(struct h2_conn *c, struct h2_stream *s)
{
	const struct h2_limits *l = &c->lim;

	c->rst_recv++;
	if (!s)
		return;
	s->flags |= H2S_F_RST_RECV;
	if (c->role != H2_SERVER || !(s->flags & H2S_F_PEER) ||
	    (s->flags & H2S_F_HEAD_SENT) ||
	    c->now - s->opened_ms >= l->premature_ms)
		return;
	c->premature++;
	/* not a glitch: clients cancel legitimately; the ratio decides */
	if (c->peer_streams >= l->premature_min_streams &&
	    c->premature * 2 > c->peer_streams)
		h2_fail(c, H2_ENHANCE_YOUR_CALM, "rapid_reset");
}
