/*
 * h2_cb: the nghttp2 session callbacks — header collection with the
 * decoded-size cap, delivery of heads, data and trailers to the owner,
 * stream close, and the send-side bookkeeping (earned frames, resets sent,
 * GOAWAY, graceful shutdown's PING, the keepalive PING's ACK).
 *
 * IMPLEMENTATION NOTES
 * Header fields are not copied: each decoded name and value is an nghttp2
 * reference-counted buffer (nghttp2_rcbuf); we take a reference while the
 * block is being received and drop it after the owner's callback, so the
 * owner gets slices into nghttp2's own memory. Header blocks never
 * interleave on a connection, so one per-connection array serves every
 * stream.
 *
 * The cap is counted on decoded bytes, name + value + 32 per field (the
 * RFC 9113 accounting of SETTINGS_MAX_HEADER_LIST_SIZE), as each field
 * leaves the HPACK decoder: an HPACK bomb (one big table entry referenced
 * a thousand times by one-byte indexes) hits the cap after a few fields,
 * however small it was on the wire. Past the cap the rest of the block is
 * still decoded (the HPACK state must stay in sync) but dropped, and the
 * stream is answered when the block ends.
 *
 * No callback here returns a fatal error except when the connection has
 * already failed (h2_fail), which stops nghttp2 at once; on_stream_close
 * never fails (CVE-2023-35945).
 */
#include <string.h>

#include "core/h2_int.h"

#define H2_RCBUF_STR(rc) __extension__ ({                                 \
	nghttp2_vec v_ = nghttp2_rcbuf_get_buf(rc);                         \
	str_make((const char *)v_.base, v_.len);                            \
})

/* The opaque payload of graceful shutdown's PING. */
const uint8_t h2_ga_opaque[8] = { 'm', 'e', 's', 'h', 'd', 'g', 'a', 0 };
/* The opaque payload of keepalive PINGs (h2_ping): distinct, so neither
 * ACK can be mistaken for the other. */
const uint8_t h2_ka_opaque[8] = { 'm', 'e', 's', 'h', 'd', 'k', 'a', 0 };

/* Drops the references held on the block being collected. */
void h2_hb_release(struct h2_conn *c)
{
	uint32_t i;

	for (i = 0; i < 2 * c->hb_n; i++)
		nghttp2_rcbuf_decref(c->hb_rc[i]);
	c->hb_n = 0;
	h2_dealloc(c, c->hb_rc);
	c->hb_rc = NULL;
	c->hb_fields = NULL;
}

/* Makes the arrays of the block being collected (one allocation, charged
 * to <c>); 0, or -1 when out of memory. */
static int h2_hb_get(struct h2_conn *c)
{
	size_t per = 2 * sizeof(*c->hb_rc) + sizeof(*c->hb_fields);

	if (c->hb_rc)
		return 0;
	c->hb_rc = h2_alloc(c, per * c->hb_cap);
	if (!c->hb_rc)
		return -1;
	c->hb_fields = (struct h2_header *)(c->hb_rc + 2 * c->hb_cap);
	return 0;
}

static int h2_ret(const struct h2_conn *c)
{
	return c->failed ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int h2_cb_begin_headers(nghttp2_session *ng, const nghttp2_frame *fr,
                               void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s;
	int32_t id = fr->hd.stream_id;

	h2_hb_release(c);
	c->hb_id = id;
	c->hb_bytes = 0;
	c->hb_count = 0;
	c->hb_overflow = 0;
	c->hb_junk = 0;
	if (fr->hd.type != NGHTTP2_HEADERS ||
	    fr->headers.cat != NGHTTP2_HCAT_REQUEST || c->role != H2_SERVER)
		return 0;
	s = h2_stream_new(c, id);
	if (!s)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	s->flags |= H2S_F_PEER;
	c->peer_streams++;
	c->prio_credit += c->prio_credit < H2_CREDIT_MAX ? 10 : 0;
	if (nghttp2_session_set_stream_user_data(ng, id, s) != 0) {
		h2_stream_free(c, s);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

/* Multiple of max_header_list_size a block may decode past the cap before it
 * is treated as a decompression bomb (see h2_cb_header). */
#define H2_BOMB_FACTOR 4

/* A header block decoded far past the cap: counted like an overflow (too
 * many end the connection); the stream is dropped without an answer, since
 * nghttp2 resets it. */
static void h2_header_bomb(struct h2_conn *c, const nghttp2_frame *fr)
{
	struct h2_stream *s = h2_stream_find(c, fr->hd.stream_id);

	h2_hb_release(c);
	c->hb_overflow = 0; /* counted here, not again when the block ends */
	c->header_overflows++;
	if (s)
		s->flags |= H2S_F_IGNORE | H2S_F_LOCAL_RST;
	if (h2_rate_hit(&c->r_hdr_over, c->now, c->lim.window_ms,
	                c->lim.max_header_overflows)) {
		h2_fail(c, H2_ENHANCE_YOUR_CALM, "header_overflow");
		return;
	}
	h2_glitch(c);
}

static int h2_cb_header(nghttp2_session *ng, const nghttp2_frame *fr,
                        nghttp2_rcbuf *name, nghttp2_rcbuf *value,
                        uint8_t flags, void *ud)
{
	struct h2_conn *c = ud;
	size_t nb;

	(void)ng;
	(void)flags;
	nb = nghttp2_rcbuf_get_buf(name).len + nghttp2_rcbuf_get_buf(value).len
	     + 32;
	if (c->hb_overflow) {
		/* A block far past the cap is a decompression bomb, not a
		 * client with big cookies: nghttp2 validates every decoded
		 * value before this callback, which costs CPU in proportion
		 * to the decoded size. Past H2_BOMB_FACTOR times the cap,
		 * stop: nghttp2 then decodes the rest of the block without
		 * validating it (HPACK state stays in sync) and resets the
		 * stream. */
		c->hb_junk += nb;
		if (c->hb_junk > (uint64_t)H2_BOMB_FACTOR * c->lim.max_header_list_size) {
			h2_header_bomb(c, fr);
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		return 0;
	}
	c->hb_count++;
	if (nb > c->lim.max_header_list_size - c->hb_bytes ||
	    c->hb_count > c->lim.max_header_fields) {
		c->hb_overflow = 1;
		h2_hb_release(c);
		return 0;
	}
	if (h2_hb_get(c) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	c->hb_bytes += (uint32_t)nb;
	nghttp2_rcbuf_incref(name);
	nghttp2_rcbuf_incref(value);
	c->hb_rc[2 * c->hb_n] = name;
	c->hb_rc[2 * c->hb_n + 1] = value;
	c->hb_n++;
	return 0;
}

/* Parses a three-digit :status; 0 when malformed (nghttp2 already checks). */
static int h2_parse_status(struct str v)
{
	if (v.len != 3 || v.p[0] < '1' || v.p[0] > '9' || v.p[1] < '0' ||
	    v.p[1] > '9' || v.p[2] < '0' || v.p[2] > '9')
		return 0;
	return (v.p[0] - '0') * 100 + (v.p[1] - '0') * 10 + (v.p[2] - '0');
}

/* Resets <s> on the owner's behalf (a callback returned H2_CB_RESET). */
static void h2_reset_for_owner(struct h2_conn *c, struct h2_stream *s)
{
	if (!(s->flags & H2S_F_LOCAL_RST))
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id,
		                          H2_INTERNAL_ERROR);
	s->flags |= H2S_F_LOCAL_RST | H2S_F_IGNORE;
}

/* A header block went over a limit: 431 for a request's opening block,
 * RST_STREAM(ENHANCE_YOUR_CALM) otherwise; too many of them end the
 * connection. */
static void h2_header_overflow(struct h2_conn *c, const nghttp2_frame *fr,
                               struct h2_stream *s)
{
	static const uint8_t n431[] = ":status", v431[] = "431";
	nghttp2_nv nv = { (uint8_t *)n431, (uint8_t *)v431, 7, 3,
	                  NGHTTP2_NV_FLAG_NO_COPY_NAME |
	                  NGHTTP2_NV_FLAG_NO_COPY_VALUE };

	c->header_overflows++;
	if (h2_rate_hit(&c->r_hdr_over, c->now, c->lim.window_ms,
	                c->lim.max_header_overflows)) {
		h2_fail(c, H2_ENHANCE_YOUR_CALM, "header_overflow");
		return;
	}
	if (h2_glitch(c))
		return;
	if (s && (s->flags & H2S_F_IGNORE))
		return;
	if (s && c->role == H2_SERVER && fr->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    nghttp2_submit_response2(c->ng, s->id, &nv, 1, NULL) == 0) {
		s->flags |= H2S_F_IGNORE | H2S_F_HEAD_SENT | H2S_F_EOF |
		            H2S_F_EOF_DONE;
		/* RFC 9113 §8.1: a complete answer, then "stop sending"; the
		 * RST must wait until the answer is out (queued together,
		 * nghttp2 would drop the answer) */
		if (!(fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
			s->flags |= H2S_F_STOP_AFTER;
		return;
	}
	nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, fr->hd.stream_id,
	                          H2_ENHANCE_YOUR_CALM);
	if (s)
		s->flags |= H2S_F_IGNORE;
}

/* What an empty block's fields point at (never NULL for the owner). */
static struct h2_header h2_no_fields[1];

/* Delivers a completed header block: a head or trailers. */
static void h2_headers_done(struct h2_conn *c, const nghttp2_frame *fr)
{
	struct h2_stream *s = h2_stream_find(c, fr->hd.stream_id);
	int end = !!(fr->hd.flags & NGHTTP2_FLAG_END_STREAM);
	struct h2_head head;
	struct str n, v;
	uint32_t i, nf = 0;
	int rv = 0;

	if (c->hb_overflow) {
		h2_hb_release(c);
		h2_header_overflow(c, fr, s);
		return;
	}
	if (!s || (s->flags & H2S_F_IGNORE)) {
		h2_hb_release(c);
		return;
	}
	memset(&head, 0, sizeof(head));
	for (i = 0; i < c->hb_n; i++) {
		n = H2_RCBUF_STR(c->hb_rc[2 * i]);
		v = H2_RCBUF_STR(c->hb_rc[2 * i + 1]);
		if (n.len == 0 || n.p[0] != ':') {
			c->hb_fields[nf].name = n;
			c->hb_fields[nf].value = v;
			nf++;
		} else if (str_eq_cstr(n, ":method")) {
			head.method = v;
		} else if (str_eq_cstr(n, ":scheme")) {
			head.scheme = v;
		} else if (str_eq_cstr(n, ":authority")) {
			head.authority = v;
		} else if (str_eq_cstr(n, ":path")) {
			head.path = v;
		} else if (str_eq_cstr(n, ":protocol")) {
			head.protocol = v;
		} else if (str_eq_cstr(n, ":status")) {
			head.status = h2_parse_status(v);
		}
	}
	if (!(s->flags & H2S_F_GOT_FINAL)) {
		head.fields = c->hb_fields ? c->hb_fields : h2_no_fields;
		head.nfields = nf;
		if (c->role == H2_SERVER || head.status >= 200)
			s->flags |= H2S_F_GOT_FINAL;
		s->flags |= H2S_F_KNOWN;
		c->last_activity = c->now;
		if (c->cb.on_head)
			rv = c->cb.on_head(c->ctx, s->id, s->user, &head, end);
	} else if (c->cb.on_trailers) {
		rv = c->cb.on_trailers(c->ctx, s->id, s->user,
		                       c->hb_fields ? c->hb_fields : h2_no_fields,
		                       nf);
	}
	h2_hb_release(c);
	if (rv) {
		h2_reset_for_owner(c, s);
		return;
	}
	if (end && !(s->flags & H2S_F_IGNORE) && c->cb.on_end)
		c->cb.on_end(c->ctx, s->id, s->user);
}

static int h2_cb_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr,
                            void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s;

	switch (fr->hd.type) {
	case NGHTTP2_HEADERS:
		h2_headers_done(c, fr);
		break;
	case NGHTTP2_DATA:
		if (!(fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
			break;
		s = h2_stream_find(c, fr->hd.stream_id);
		if (s && (s->flags & (H2S_F_KNOWN | H2S_F_IGNORE)) ==
		    H2S_F_KNOWN && c->cb.on_end)
			c->cb.on_end(c->ctx, s->id, s->user);
		break;
	case NGHTTP2_RST_STREAM:
		h2_on_rst_recv(c, h2_stream_find(c, fr->hd.stream_id));
		break;
	case NGHTTP2_SETTINGS:
		if (fr->hd.flags & NGHTTP2_FLAG_ACK)
			c->settings_acked = 1;
		else
			c->settings_received = 1;
		break;
	case NGHTTP2_PING:
		/* an ACK of an opaque we did not send changes nothing here */
		if ((fr->hd.flags & NGHTTP2_FLAG_ACK) && c->ka_out &&
		    memcmp(fr->ping.opaque_data, h2_ka_opaque, 8) == 0) {
			c->ka_out = 0;
			c->ka_acked++;
		}
		if ((fr->hd.flags & NGHTTP2_FLAG_ACK) && c->graceful == 1 &&
		    memcmp(fr->ping.opaque_data, h2_ga_opaque, 8) == 0) {
			c->graceful = 2;
			nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE,
			        nghttp2_session_get_last_proc_stream_id(ng),
			        H2_NO_ERROR, NULL, 0);
		}
		break;
	case NGHTTP2_GOAWAY:
		c->goaway_recv = 1;
		if (c->cb.on_goaway)
			c->cb.on_goaway(c->ctx, fr->goaway.last_stream_id,
			                fr->goaway.error_code);
		break;
	default:
		break;
	}
	return h2_ret(c);
}

static int h2_cb_data(nghttp2_session *ng, uint8_t flags, int32_t id,
                      const uint8_t *data, size_t len, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s = h2_stream_find(c, id);

	(void)flags;
	if (!s || (s->flags & (H2S_F_KNOWN | H2S_F_IGNORE)) != H2S_F_KNOWN ||
	    !c->cb.on_data) {
		nghttp2_session_consume(ng, id, len);
		return h2_ret(c);
	}
	s->unconsumed += len;
	if (c->cb.on_data(c->ctx, id, s->user, (const char *)data, len))
		h2_reset_for_owner(c, s);
	return h2_ret(c);
}

static int h2_cb_stream_close(nghttp2_session *ng, int32_t id, uint32_t code,
                              void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);

	if (s)
		h2_stream_closed(c, s, (s->flags & (H2S_F_RST_SENT |
		                 H2S_F_RST_RECV)) || code != H2_NO_ERROR, code);
	return 0;
}

static int h2_cb_frame_send(nghttp2_session *ng, const nghttp2_frame *fr,
                            void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s;

	switch (fr->hd.type) {
	case NGHTTP2_HEADERS:
		c->ping_earned = 1;
		s = h2_stream_find(c, fr->hd.stream_id);
		if (!s)
			break;
		s->flags &= ~H2S_F_PENDING;
		if (s->flags & H2S_F_STOP_AFTER) {
			/* not a provoked reset: the overflow was counted */
			s->flags = (s->flags & ~H2S_F_STOP_AFTER) |
			           H2S_F_LOCAL_RST;
			nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id,
			                          H2_NO_ERROR);
		}
		break;
	case NGHTTP2_DATA:
		c->ping_earned = 1;
		if (c->wu_credit < H2_CREDIT_MAX)
			c->wu_credit += 10;
		break;
	case NGHTTP2_RST_STREAM:
		h2_on_rst_sent(c, h2_stream_find(c, fr->hd.stream_id),
		               fr->rst_stream.error_code);
		break;
	case NGHTTP2_GOAWAY:
		c->goaway_sent = 1;
		/* a shutdown notice (last id 2^31-1) is not the end */
		if (fr->goaway.last_stream_id == 0x7fffffff &&
		    fr->goaway.error_code == H2_NO_ERROR)
			break;
		c->close_code = fr->goaway.error_code;
		if (fr->goaway.error_code != H2_NO_ERROR && !c->reason) {
			c->reason = h2_reason_for_code(fr->goaway.error_code);
			h2_glitch(c);
		}
		break;
	case NGHTTP2_PING:
		if (!(fr->hd.flags & NGHTTP2_FLAG_ACK))
			c->pings_out++;
		break;
	default:
		break;
	}
	return h2_ret(c);
}

/* A request HEADERS that never left (GOAWAY received, cancelled by
 * h2_stream_reset): nghttp2 never opened the stream, so no on_stream_close
 * will come; close it for the owner here. */
static int h2_cb_not_send(nghttp2_session *ng, const nghttp2_frame *fr,
                          int err, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s;

	(void)err;
	if (fr->hd.type != NGHTTP2_HEADERS || c->role != H2_CLIENT ||
	    nghttp2_session_find_stream(ng, fr->hd.stream_id))
		return 0;
	s = h2_stream_find(c, fr->hd.stream_id);
	if (s && (s->flags & H2S_F_PENDING))
		h2_stream_closed(c, s, 1, (s->flags & H2S_F_LOCAL_RST) ?
		                 H2_CANCEL : H2_REFUSED_STREAM);
	return 0;
}

static int h2_cb_invalid_frame(nghttp2_session *ng, const nghttp2_frame *fr,
                               int err, void *ud)
{
	struct h2_conn *c = ud;

	(void)ng;
	(void)fr;
	(void)err;
	h2_glitch(c);
	return h2_ret(c);
}

/* Sets every callback h2 uses on <cbs>. */
void h2_cb_install(nghttp2_session_callbacks *cbs)
{
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
	        h2_cb_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback2(cbs, h2_cb_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
	        h2_cb_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
	        h2_cb_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
	        h2_cb_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs,
	        h2_cb_frame_send);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs,
	        h2_cb_not_send);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs,
	        h2_cb_invalid_frame);
	nghttp2_session_callbacks_set_send_data_callback(cbs, h2_send_data_cb);
}
