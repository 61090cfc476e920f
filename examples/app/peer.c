/*
 * peer: B <-> C gRPC traffic. See peer.h.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/util.h"
#include "abc.h"
#include "h2cli.h"
#include "pb.h"
#include "peer.h"

#define PEER_TIMEOUT_MS 2000
#define PEER_TEXT_MAX 96
#define PEER_COUNT_N 5
#define PEER_COUNT_INTERVAL_MS 10

/* What a call expects back. */
struct peer_call {
	int64_t seq;                /* Say: seq sent */
	size_t textlen;             /* Say: text sent */
	char text[PEER_TEXT_MAX];
	uint32_t next;              /* Count: next reply number expected */
	int replies;                /* messages received */
};

static struct {
	struct h2cli *ch;
	struct abc_target *say;
	struct abc_target *count;
	struct abc_pacer pacer;
	struct loop_timer count_tmr;
	int64_t seq;
} peer;

/* Counts a finished call and frees it. */
static void peer_done(struct abc_target *t, struct peer_call *pc, int ok,
                      int status, const char *message)
{
	char why[256];

	if (status != PB_GRPC_OK)
		snprintf(why, sizeof(why), "%s (%d) %s",
		         pb_grpc_status_str(status), status, message);
	else
		snprintf(why, sizeof(why), "unexpected answer");
	abc_target_count(t, ok, why);
	mem_free(pc);
}

static int peer_say_msg(void *arg, const uint8_t *msg, size_t len)
{
	struct peer_call *pc = arg;
	struct pb_say_reply r;

	if (pb_say_reply_decode(msg, len, &r) < 0 || pc->replies++ ||
	    r.seq != pc->seq || !str_eq(r.text, str_make(pc->text, pc->textlen)))
		return -1;
	return 0;
}

static void peer_say_done(void *arg, int status, const char *message)
{
	struct peer_call *pc = arg;

	peer_done(peer.say, pc, status == PB_GRPC_OK && pc->replies == 1,
	          status, message);
}

static int peer_count_msg(void *arg, const uint8_t *msg, size_t len)
{
	struct peer_call *pc = arg;
	struct pb_count_reply r;

	if (pb_count_reply_decode(msg, len, &r) < 0 || r.n != pc->next)
		return -1;
	pc->next++;
	pc->replies++;
	return 0;
}

static void peer_count_done(void *arg, int status, const char *message)
{
	struct peer_call *pc = arg;

	peer_done(peer.count, pc,
	          status == PB_GRPC_OK && pc->replies == PEER_COUNT_N,
	          status, message);
}

/* Serializes <m> with <enc> and starts the call; counts a failure when it
 * cannot start. */
static void peer_start(const char *path, struct abc_target *t,
                      struct peer_call *pc, uint8_t *buf, ssize_t n,
                      h2cli_msg_fn *on_msg, h2cli_done_fn *done)
{
	if (n < 0 || h2cli_call(peer.ch, path, buf, (size_t)n,
	                        PEER_TIMEOUT_MS, on_msg, done, pc) < 0) {
		abc_target_count(t, 0, "cannot start the call");
		mem_free(pc);
	}
}

static void peer_fire(void)
{
	uint8_t buf[PB_ENCODED_MAX(PEER_TEXT_MAX)];
	struct peer_call *pc = mem_calloc(1, sizeof(*pc));
	struct pb_say_request m;
	int n;

	if (!pc) {
		abc_target_count(peer.say, 0, "out of memory");
		return;
	}
	pc->seq = ++peer.seq;
	n = snprintf(pc->text, sizeof(pc->text), "hello from %s", abc.name);
	pc->textlen = MIN((size_t)(n > 0 ? n : 0), sizeof(pc->text) - 1);
	m.text = str_make(pc->text, pc->textlen);
	m.seq = pc->seq;
	peer_start("/abc.Echo/Say", peer.say, pc, buf,
	          pb_say_request_encode(&m, buf, sizeof(buf)),
	          peer_say_msg, peer_say_done);
}

static void peer_count_cb(struct loop *loop, struct loop_timer *t)
{
	struct pb_count_request m = { PEER_COUNT_N, PEER_COUNT_INTERVAL_MS };
	struct peer_call *pc = mem_calloc(1, sizeof(*pc));
	uint8_t buf[PB_ENCODED_MAX(0)];

	loop_timer_arm(loop, t, PEER_COUNT_MS);
	if (!pc) {
		abc_target_count(peer.count, 0, "out of memory");
		return;
	}
	pc->next = 1;
	peer_start("/abc.Echo/Count", peer.count, pc, buf,
	          pb_count_request_encode(&m, buf, sizeof(buf)),
	          peer_count_msg, peer_count_done);
}

int peer_init(const char *url, char *err, size_t errlen)
{
	struct net_addr a;

	if (net_parse_url(url, &a, err, errlen) < 0)
		return -1;
	peer.ch = h2cli_new(&a);
	if (!peer.ch) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	peer.say = abc_target_add("say");
	peer.count = abc_target_add("count");
	abc_pacer_start(&peer.pacer, peer_fire);
	loop_timer_init(&peer.count_tmr, peer_count_cb);
	if (abc.rate)
		loop_timer_arm(&abc.loop, &peer.count_tmr, PEER_COUNT_MS);
	return 0;
}

void peer_shutdown(void)
{
	if (!peer.ch)
		return;
	abc_pacer_stop(&peer.pacer);
	loop_timer_stop(&abc.loop, &peer.count_tmr);
	h2cli_free(peer.ch);
	peer.ch = NULL;
}
