#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "core/log.h"
#include "core/str.h"

/* 2026-11-29T14:00:01.123456789Z */
static const struct timespec t_ts = { 1795960801, 123456789 };

/* Formats into a NUL-terminated static buffer for CHECK_STR. */
static const char *fmt_line(int format, int level, const char *module,
                            const char *msg, size_t msglen)
{
	static char out[LOG_LINE_MAX + 1];
	size_t n;

	n = log_format_line(out, LOG_LINE_MAX, format, level, module, &t_ts,
	                    msg, msglen);
	out[n] = '\0';
	return out;
}

#define FMT(format, level, module, lit) \
	fmt_line(format, level, module, lit, sizeof(lit) - 1)

static const char *fmt_ts(time_t sec, long nsec)
{
	static char out[LOG_LINE_MIN + 1];
	struct timespec ts = { sec, nsec };
	size_t n;

	n = log_format_line(out, LOG_LINE_MIN, LOG_FORMAT_TEXT,
	                    LOG_LEVEL_INFO, NULL, &ts, "", 0);
	/* keep only the timestamp */
	out[n < 27 ? 0 : 27] = '\0';
	return out;
}

/*
 * A small JSON checker for the shape log lines have: one object of string
 * members followed by '\n'. Strings must use only JSON's escapes, contain no
 * raw control bytes and be valid UTF-8.
 */
static int j_hex4(const char *p, const char *end)
{
	int i;

	if (end - p < 4)
		return 0;
	for (i = 0; i < 4; i++) {
		char c = p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return 0;
	}
	return 1;
}

static const char *j_string(const char *p, const char *end)
{
	if (p >= end || *p++ != '"')
		return NULL;
	while (p < end) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (++p >= end)
				return NULL;
			if (*p == 'u') {
				if (!j_hex4(p + 1, end))
					return NULL;
				p += 5;
			} else if (strchr("\"\\/bfnrt", *p) && *p) {
				p++;
			} else {
				return NULL;
			}
			continue;
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		/* multi-byte: lead + continuation count */
		{
			int need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1, i;

			if (c < 0xc2 || c > 0xf4 || end - p <= need)
				return NULL;
			for (i = 1; i <= need; i++) {
				if (((unsigned char)p[i] & 0xc0) != 0x80)
					return NULL;
			}
			p += need + 1;
		}
	}
	return NULL;
}

static int json_line_ok(const char *p, size_t n)
{
	const char *end = p + n;

	if (n < 3 || p[n - 1] != '\n' || memchr(p, '\n', n - 1))
		return 0;
	end--;
	if (*p++ != '{')
		return 0;
	for (;;) {
		p = j_string(p, end);
		if (!p || p >= end || *p++ != ':')
			return 0;
		p = j_string(p, end);
		if (!p || p >= end)
			return 0;
		if (*p == '}')
			return p + 1 == end;
		if (*p++ != ',')
			return 0;
	}
}

#define JSON_LIT_OK(lit) json_line_ok(lit, sizeof(lit) - 1)

TEST(level_names)
{
	int l = -7;

	CHECK(log_level_parse(STR_LIT("info"), &l) == 0 && l == LOG_LEVEL_INFO);
	CHECK(log_level_parse(STR_LIT("TRACE"), &l) == 0);
	CHECK(l == LOG_LEVEL_TRACE);
	CHECK(log_level_parse(STR_LIT("Off"), &l) == 0 && l == LOG_LEVEL_OFF);
	l = -7;
	CHECK(log_level_parse(STR_LIT("warning"), &l) == -1);
	CHECK(log_level_parse(STR_LIT("inf"), &l) == -1);
	CHECK(log_level_parse(STR_LIT(""), &l) == -1);
	CHECK(l == -7);
	CHECK_STR(log_level_name(LOG_LEVEL_WARN), "warn");
	CHECK_STR(log_level_name(99), "?");
	CHECK_STR(log_level_name(-1), "?");
}

TEST(spec_roundtrip)
{
	char err[128], out[LOG_SPEC_MAX];

	log_reset();
	CHECK(log_get_spec(out, sizeof(out)) == 0);
	CHECK_STR(out, "info");
	CHECK(log_set_spec("warn", err, sizeof(err)) == 0);
	CHECK(log_get_spec(out, sizeof(out)) == 0);
	CHECK_STR(out, "warn");
	CHECK(log_set_spec("info,proxy=debug,controller.bus=trace", err,
	                   sizeof(err)) == 0);
	CHECK(log_get_spec(out, sizeof(out)) == 0);
	CHECK_STR(out, "info,proxy=debug,controller.bus=trace");
	/* spaces, case, default anywhere */
	CHECK(log_set_spec(" proxy = DEBUG ,\tWarn ", err, sizeof(err)) == 0);
	CHECK(log_get_spec(out, sizeof(out)) == 0);
	CHECK_STR(out, "warn,proxy=debug");
	/* no default: info */
	CHECK(log_set_spec("proxy.out=off", err, sizeof(err)) == 0);
	CHECK(log_get_spec(out, sizeof(out)) == 0);
	CHECK_STR(out, "info,proxy.out=off");
	/* small output buffer */
	CHECK(log_get_spec(out, 10) == -1);
	CHECK(strlen(out) < 10);
	CHECK(log_get_spec(out, 0) == -1);
	log_reset();
}

TEST(spec_invalid_keeps_old)
{
	static const char *const bad[] = {
		"", "   ", "verbose", "info,", ",info", "info,,proxy=debug",
		"proxy=", "=debug", "pro xy=debug", "a..b=info", ".a=info",
		"a.=info", "info,warn", "proxy=debug,proxy=trace",
		"proxy=debug=x", "proxy:debug", "pröxy=debug", "proxy=1",
		"info;proxy=debug",
	};
	char err[128], out[LOG_SPEC_MAX];
	size_t i;

	log_reset();
	REQUIRE(log_set_spec("warn,proxy=debug", err, sizeof(err)) == 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(log_set_spec(bad[i], err, sizeof(err)) == -1);
		CHECK(err[0] != '\0');
		CHECK(log_get_spec(out, sizeof(out)) == 0);
		CHECK_STR(out, "warn,proxy=debug");
		CHECK(log_enabled(LOG_LEVEL_DEBUG, "proxy"));
		CHECK(!log_enabled(LOG_LEVEL_INFO, "other"));
	}
	CHECK(log_set_spec(NULL, err, sizeof(err)) == -1);
	CHECK(log_set_spec("nope", NULL, 0) == -1); /* no err buffer */
	log_reset();
}

TEST(spec_error_text_is_safe)
{
	char err[64];
	size_t i;

	CHECK(log_set_spec("\x1b[31m\n=info", err, sizeof(err)) == -1);
	for (i = 0; err[i]; i++)
		CHECK((unsigned char)err[i] >= 0x20 && err[i] != 0x7f);
	CHECK(strstr(err, "module") != NULL);
	CHECK(log_set_spec("info,proxy=chatty", err, sizeof(err)) == -1);
	CHECK(strstr(err, "chatty") != NULL);
	CHECK(log_set_spec_str(STR_LIT("warn,warn"), err, 8) == -1);
	CHECK(strlen(err) == 7); /* cut to errlen */
}

TEST(spec_module_limits)
{
	char spec[LOG_SPEC_MAX * 2], err[128], out[LOG_SPEC_MAX];
	char name[LOG_MODULE_MAX + 2];
	size_t len = 0;
	int i, n;

	log_reset();
	/* exactly LOG_OVERRIDES_MAX overrides with maximal names */
	len = (size_t)snprintf(spec, sizeof(spec), "trace");
	for (i = 0; i < LOG_OVERRIDES_MAX; i++) {
		memset(name, 'm', LOG_MODULE_MAX);
		n = snprintf(name, sizeof(name), "%02d", i);
		name[n] = 'm';
		name[LOG_MODULE_MAX] = '\0';
		len += (size_t)snprintf(spec + len, sizeof(spec) - len,
		                        ",%s=trace", name);
	}
	CHECK(log_set_spec(spec, err, sizeof(err)) == 0);
	CHECK(log_get_spec(out, sizeof(out)) == 0);
	CHECK_STR(out, spec);
	/* one more is too many */
	snprintf(spec + len, sizeof(spec) - len, ",extra=info");
	CHECK(log_set_spec(spec, err, sizeof(err)) == -1);
	/* a name one byte too long */
	memset(name, 'x', LOG_MODULE_MAX + 1);
	name[LOG_MODULE_MAX + 1] = '\0';
	snprintf(spec, sizeof(spec), "%s=info", name);
	CHECK(log_set_spec(spec, err, sizeof(err)) == -1);
	name[LOG_MODULE_MAX] = '\0';
	snprintf(spec, sizeof(spec), "%s=info", name);
	CHECK(log_set_spec(spec, err, sizeof(err)) == 0);
	log_reset();
}

TEST(enabled_longest_match)
{
	char err[128];

	log_reset();
	REQUIRE(log_set_spec("warn,controller=debug,controller.bus=trace,"
	                     "controller.bus.x=off", err, sizeof(err)) == 0);
	CHECK(log_enabled(LOG_LEVEL_TRACE, "controller.bus"));
	CHECK(log_enabled(LOG_LEVEL_TRACE, "controller.bus.queue"));
	CHECK(!log_enabled(LOG_LEVEL_TRACE, "controller"));
	CHECK(log_enabled(LOG_LEVEL_DEBUG, "controller"));
	CHECK(log_enabled(LOG_LEVEL_DEBUG, "controller.identity"));
	CHECK(!log_enabled(LOG_LEVEL_DEBUG, "controllerx"));
	CHECK(log_enabled(LOG_LEVEL_WARN, "controllerx"));
	CHECK(!log_enabled(LOG_LEVEL_TRACE, "controller.busy"));
	CHECK(log_enabled(LOG_LEVEL_DEBUG, "controller.busy"));
	CHECK(!log_enabled(LOG_LEVEL_ERROR, "controller.bus.x"));
	CHECK(!log_enabled(LOG_LEVEL_ERROR, "controller.bus.x.y"));
	CHECK(log_enabled(LOG_LEVEL_ERROR, "controller.bus.xy"));
	CHECK(!log_enabled(LOG_LEVEL_INFO, NULL));
	CHECK(log_enabled(LOG_LEVEL_WARN, NULL));
	CHECK(!log_enabled(LOG_LEVEL_INFO, ""));
	CHECK(!log_enabled(LOG_LEVEL_INFO, "contr"));
	/* "off" and out-of-range levels are never enabled */
	CHECK(!log_enabled(LOG_LEVEL_OFF, "controller"));
	CHECK(!log_enabled(LOG_LEVEL_TRACE + 1, "controller.bus"));
	CHECK(!log_enabled(-1, "controller.bus"));

	/* the order of overrides does not matter, length does */
	REQUIRE(log_set_spec("controller.bus=trace,controller=info,"
	                     "controller.bus.x=error", err, sizeof(err)) == 0);
	CHECK(log_enabled(LOG_LEVEL_TRACE, "controller.bus.q"));
	CHECK(!log_enabled(LOG_LEVEL_DEBUG, "controller.q"));
	CHECK(!log_enabled(LOG_LEVEL_WARN, "controller.bus.x"));

	REQUIRE(log_set_spec("off", err, sizeof(err)) == 0);
	CHECK(!log_enabled(LOG_LEVEL_ERROR, "controller"));
	CHECK(!log_enabled(LOG_LEVEL_ERROR, NULL));
	REQUIRE(log_set_spec("trace", err, sizeof(err)) == 0);
	CHECK(log_enabled(LOG_LEVEL_TRACE, "anything"));
	REQUIRE(log_set_spec("off,proxy=error", err, sizeof(err)) == 0);
	CHECK(log_enabled(LOG_LEVEL_ERROR, "proxy.inbound"));
	CHECK(!log_enabled(LOG_LEVEL_WARN, "proxy.inbound"));
	CHECK(!log_enabled(LOG_LEVEL_ERROR, "controller"));
	log_reset();
}

static int side_effects;

static int bump(void)
{
	return ++side_effects;
}

TEST(macros_skip_disabled)
{
	char err[64];
	int fd = log_set_fd(-1); /* discard */

	log_reset();
	log_set_fd(-1);
	REQUIRE(log_set_spec("warn,proxy=debug", err, sizeof(err)) == 0);
	side_effects = 0;
	LOG_TRACE("proxy", "%d", bump());
	LOG_DEBUG("controller", "%d", bump());
	LOG_INFO(NULL, "%d", bump());
	CHECK(side_effects == 0);
	LOG_DEBUG("proxy.inbound", "%d", bump());
	LOG_WARN("controller", "%d", bump());
	LOG_ERROR(NULL, "%d", bump());
	CHECK(side_effects == 3);
	log_reset();
	log_set_fd(fd);
}

TEST(text_exact)
{
	CHECK_STR(FMT(LOG_FORMAT_TEXT, LOG_LEVEL_INFO, "proxy",
	              "message key=value"),
	          "2026-11-29T14:00:01.123456Z INFO proxy: message key=value\n");
	CHECK_STR(FMT(LOG_FORMAT_TEXT, LOG_LEVEL_ERROR, "controller.bus", ""),
	          "2026-11-29T14:00:01.123456Z ERROR controller.bus: \n");
	CHECK_STR(FMT(LOG_FORMAT_TEXT, LOG_LEVEL_TRACE, NULL, "no module"),
	          "2026-11-29T14:00:01.123456Z TRACE no module\n");
	CHECK_STR(FMT(LOG_FORMAT_TEXT, LOG_LEVEL_WARN, "", "empty module"),
	          "2026-11-29T14:00:01.123456Z WARN empty module\n");
	CHECK_STR(FMT(LOG_FORMAT_TEXT, 42, "m", "x"),
	          "2026-11-29T14:00:01.123456Z ? m: x\n");
	/* unknown formats mean text */
	CHECK_STR(FMT(7, LOG_LEVEL_DEBUG, "m", "x"),
	          "2026-11-29T14:00:01.123456Z DEBUG m: x\n");
}

TEST(json_exact)
{
	const char *l;

	l = FMT(LOG_FORMAT_JSON, LOG_LEVEL_INFO, "proxy", "message key=value");
	CHECK_STR(l, "{\"ts\":\"2026-11-29T14:00:01.123456Z\",\"level\":"
	             "\"INFO\",\"module\":\"proxy\",\"msg\":"
	             "\"message key=value\"}\n");
	CHECK(json_line_ok(l, strlen(l)));
	l = FMT(LOG_FORMAT_JSON, LOG_LEVEL_WARN, NULL, "");
	CHECK_STR(l, "{\"ts\":\"2026-11-29T14:00:01.123456Z\",\"level\":"
	             "\"WARN\",\"msg\":\"\"}\n");
	CHECK(json_line_ok(l, strlen(l)));
	/* the checker itself rejects broken lines */
	CHECK(!JSON_LIT_OK("{\"a\":\"b\"}"));
	CHECK(!JSON_LIT_OK("{\"a\":\"b\n\"}\n"));
	CHECK(!JSON_LIT_OK("{\"a\":\"\\x41\"}\n"));
	CHECK(!JSON_LIT_OK("{\"a\":\"\xff\"}\n"));
	CHECK(!JSON_LIT_OK("{\"a\":\"b\"}x\n"));
	CHECK(JSON_LIT_OK("{\"a\":\"\\u00e9\\n\xc3\xa9\"}\n"));
}

TEST(timestamps)
{
	CHECK_STR(fmt_ts(0, 0), "1970-01-01T00:00:00.000000Z");
	CHECK_STR(fmt_ts(-1, 999999), "1969-12-31T23:59:59.000999Z");
	CHECK_STR(fmt_ts(951782400, 0), "2000-02-29T00:00:00.000000Z");
	CHECK_STR(fmt_ts(951868800, 0), "2000-03-01T00:00:00.000000Z");
	CHECK_STR(fmt_ts(4107542400LL, 0), "2100-03-01T00:00:00.000000Z");
	CHECK_STR(fmt_ts(1709251199, 1000), "2024-02-29T23:59:59.000001Z");
	CHECK_STR(fmt_ts(253402300799LL, 999999999),
	          "9999-12-31T23:59:59.999999Z");
	/* clamped, never garbage */
	CHECK_STR(fmt_ts(253402300800LL, 0), "9999-12-31T23:59:59.999999Z");
	CHECK_STR(fmt_ts(INT64_MAX, 0), "9999-12-31T23:59:59.999999Z");
	CHECK_STR(fmt_ts(-62167219201LL, 5000), "0000-01-01T00:00:00.000000Z");
	CHECK_STR(fmt_ts(INT64_MIN, 0), "0000-01-01T00:00:00.000000Z");
	CHECK_STR(fmt_ts(0, -5), "1970-01-01T00:00:00.000000Z");
	CHECK_STR(fmt_ts(0, 2000000000L), "1970-01-01T00:00:00.999999Z");
}

TEST(escaping_text)
{
	const char *l;

	l = FMT(LOG_FORMAT_TEXT, LOG_LEVEL_INFO, "m",
	        "a\nb\r\tc\\d\x01\x1b\x7f\"q\" \0z");
	CHECK_STR(l, "2026-11-29T14:00:01.123456Z INFO m: "
	             "a\\nb\\r\\tc\\\\d\\x01\\x1b\\x7f\"q\" \\x00z\n");
	/* invalid UTF-8 as \xHH; valid passes; C1 and LS/PS as \uXXXX */
	l = FMT(LOG_FORMAT_TEXT, LOG_LEVEL_INFO, "m",
	        "\xff\xc3\xa9\xc0\xaf\xe2\x82\xac\xc2\x85\xe2\x80\xa8"
	        "\xf0\x9f\x98\x80\xed\xa0\x80\xc3");
	CHECK_STR(l, "2026-11-29T14:00:01.123456Z INFO m: "
	             "\\xff\xc3\xa9\\xc0\\xaf\xe2\x82\xac\\u0085\\u2028"
	             "\xf0\x9f\x98\x80\\xed\\xa0\\x80\\xc3\n");
	/* the module is escaped too */
	l = FMT(LOG_FORMAT_TEXT, LOG_LEVEL_INFO, "a\nb", "x");
	CHECK_STR(l, "2026-11-29T14:00:01.123456Z INFO a\\nb: x\n");
}

TEST(escaping_json)
{
	const char *l;

	l = FMT(LOG_FORMAT_JSON, LOG_LEVEL_INFO, "m\"",
	        "say \"hi\"\\\n\r\t\x01\x1f\x7f\0/");
	CHECK_STR(l, "{\"ts\":\"2026-11-29T14:00:01.123456Z\",\"level\":"
	             "\"INFO\",\"module\":\"m\\\"\",\"msg\":\"say \\\"hi\\\""
	             "\\\\\\n\\r\\t\\u0001\\u001f\\u007f\\u0000/\"}\n");
	CHECK(json_line_ok(l, strlen(l)));
	l = FMT(LOG_FORMAT_JSON, LOG_LEVEL_INFO, "m",
	        "\xff\xc3\xa9\xc0\xaf\xe2\x82\xac\xc2\x85\xe2\x80\xa9"
	        "\xf0\x9f\x98\x80\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82");
	CHECK_STR(l, "{\"ts\":\"2026-11-29T14:00:01.123456Z\",\"level\":"
	             "\"INFO\",\"module\":\"m\",\"msg\":\"\\ufffd\xc3\xa9"
	             "\\ufffd\\ufffd\xe2\x82\xac\\u0085\\u2029\xf0\x9f\x98\x80"
	             "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
	             "\\ufffd\\ufffd\"}\n");
	CHECK(json_line_ok(l, strlen(l)));
}

TEST(every_byte_stays_one_line)
{
	char msg[256], out[LOG_LINE_MAX];
	size_t i, n;
	int f;

	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (char)i;
	for (f = LOG_FORMAT_TEXT; f <= LOG_FORMAT_JSON; f++) {
		n = log_format_line(out, sizeof(out), f, LOG_LEVEL_INFO, "m",
		                    &t_ts, msg, sizeof(msg));
		REQUIRE(n > 0 && n <= sizeof(out));
		CHECK(out[n - 1] == '\n');
		for (i = 0; i + 1 < n; i++)
			CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
		if (f == LOG_FORMAT_JSON)
			CHECK(json_line_ok(out, n));
	}
}

TEST(truncation)
{
	static char msg[3 * LOG_LINE_MAX];
	char out[LOG_LINE_MAX + 16];
	const char *mark = LOG_TRUNC_MARK;
	size_t n, ml = strlen(mark), prefix, fit;

	memset(msg, 'a', sizeof(msg));
	memset(out, '#', sizeof(out));
	n = log_format_line(out, LOG_LINE_MAX, LOG_FORMAT_TEXT, LOG_LEVEL_INFO,
	                    "m", &t_ts, msg, sizeof(msg));
	CHECK(n == LOG_LINE_MAX);
	CHECK(out[LOG_LINE_MAX] == '#'); /* nothing past outlen */
	CHECK(out[n - 1] == '\n' && memchr(out, '\n', n - 1) == NULL);
	CHECK(memcmp(out + n - 1 - ml, mark, ml) == 0);

	/* exactly fitting message: no mark */
	prefix = strlen("2026-11-29T14:00:01.123456Z INFO m: ");
	fit = LOG_LINE_MAX - prefix - 1;
	n = log_format_line(out, LOG_LINE_MAX, LOG_FORMAT_TEXT, LOG_LEVEL_INFO,
	                    "m", &t_ts, msg, fit);
	CHECK(n == LOG_LINE_MAX);
	CHECK(out[n - 2] == 'a');
	n = log_format_line(out, LOG_LINE_MAX, LOG_FORMAT_TEXT, LOG_LEVEL_INFO,
	                    "m", &t_ts, msg, fit + 1);
	CHECK(n == LOG_LINE_MAX);
	CHECK(memcmp(out + n - 1 - ml, mark, ml) == 0);

	/* JSON: escapes are never split and the object stays closed */
	memset(msg, 0x01, sizeof(msg));
	n = log_format_line(out, LOG_LINE_MIN, LOG_FORMAT_JSON, LOG_LEVEL_INFO,
	                    "m", &t_ts, msg, sizeof(msg));
	REQUIRE(n > ml + 9 && n <= LOG_LINE_MIN);
	CHECK(json_line_ok(out, n));
	CHECK(memcmp(out + n - 3 - ml, mark, ml) == 0);
	CHECK(memcmp(out + n - 3 - ml - 6, "\\u0001", 6) == 0);

	/* a multi-byte character at the edge is not split either */
	{
		static char euro[3 * LOG_LINE_MAX];
		size_t i;

		for (i = 0; i + 3 <= sizeof(euro); i += 3)
			memcpy(euro + i, "\xe2\x82\xac", 3);
		n = log_format_line(out, LOG_LINE_MAX, LOG_FORMAT_JSON,
		                    LOG_LEVEL_INFO, "m", &t_ts, euro, i);
		REQUIRE(n > ml + 3);
		CHECK(json_line_ok(out, n));
		CHECK(memcmp(out + n - 3 - ml - 3, "\xe2\x82\xac", 3) == 0);
	}

	/* a too-small buffer gets nothing */
	CHECK(log_format_line(out, LOG_LINE_MIN - 1, LOG_FORMAT_TEXT,
	                      LOG_LEVEL_INFO, "m", &t_ts, "x", 1) == 0);
	CHECK(log_format_line(NULL, LOG_LINE_MAX, LOG_FORMAT_TEXT,
	                      LOG_LEVEL_INFO, "m", &t_ts, "x", 1) == 0);
}

TEST(long_module_is_cut)
{
	char mod[300], out[LOG_LINE_MAX];
	size_t n;

	memset(mod, 'q', sizeof(mod) - 1);
	mod[sizeof(mod) - 1] = '\0';
	n = log_format_line(out, LOG_LINE_MIN, LOG_FORMAT_JSON, LOG_LEVEL_INFO,
	                    mod, &t_ts, "hello", 5);
	REQUIRE(n > 0 && n < sizeof(out));
	CHECK(json_line_ok(out, n));
	out[n] = '\0';
	CHECK(strstr(out, "\"msg\":\"hello\"}\n") != NULL);
	memset(mod, '\n', sizeof(mod) - 1);
	n = log_format_line(out, LOG_LINE_MIN, LOG_FORMAT_TEXT, LOG_LEVEL_INFO,
	                    mod, &t_ts, "hello", 5);
	REQUIRE(n > 10);
	CHECK(memcmp(out + n - 10, "\\n: hello\n", 10) == 0);
	CHECK(memchr(out, '\n', n - 1) == NULL);
}

TEST(formats)
{
	log_reset();
	CHECK(log_get_format() == LOG_FORMAT_TEXT);
	CHECK(log_set_format("json") == 0);
	CHECK(log_get_format() == LOG_FORMAT_JSON);
	CHECK(log_set_format("xml") == -1);
	CHECK(log_set_format("JSON ") == -1);
	CHECK(log_set_format(NULL) == -1);
	CHECK(log_get_format() == LOG_FORMAT_JSON);
	CHECK(log_set_format("text") == 0);
	CHECK(log_get_format() == LOG_FORMAT_TEXT);
}

/* Reads what is in the pipe (non-blocking), NUL-terminated. */
static ssize_t drain(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);

	buf[n > 0 ? n : 0] = '\0';
	return n;
}

TEST(output_to_pipe)
{
	static char big[2 * LOG_LINE_MAX];
	char buf[2 * LOG_LINE_MAX];
	int p[2], old;
	ssize_t n;

	REQUIRE(pipe(p) == 0);
	REQUIRE(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0);
	log_reset();
	old = log_set_fd(p[1]);
	CHECK(log_set_format("json") == 0);

	LOG_INFO("proxy", "hello %s n=%d", "world", 7);
	n = drain(p[0], buf, sizeof(buf));
	REQUIRE(n > 0);
	CHECK(json_line_ok(buf, (size_t)n));
	CHECK(strstr(buf, "\"level\":\"INFO\",\"module\":\"proxy\","
	                  "\"msg\":\"hello world n=7\"}\n") != NULL);

	/* disabled: nothing written */
	LOG_DEBUG("proxy", "hidden");
	CHECK(drain(p[0], buf, sizeof(buf)) < 0 && errno == EAGAIN);

	/* one write per line, cut to LOG_LINE_MAX with the mark */
	memset(big, 'x', sizeof(big) - 1);
	LOG_WARN("proxy", "%s", big);
	n = drain(p[0], buf, sizeof(buf));
	CHECK(n == LOG_LINE_MAX);
	CHECK(json_line_ok(buf, (size_t)n));
	CHECK(strstr(buf, LOG_TRUNC_MARK "\"}\n") != NULL);

	CHECK(log_set_format("text") == 0);
	LOG_ERROR(NULL, "two\nlines?");
	n = drain(p[0], buf, sizeof(buf));
	REQUIRE(n > 0);
	CHECK(strstr(buf, " ERROR two\\nlines?\n") != NULL);
	CHECK(strchr(buf, '\n') == buf + n - 1);

	log_set_fd(old);
	close(p[0]);
	close(p[1]);
	log_reset();
}

TEST(errno_kept_and_full_pipe_drops)
{
	char chunk[4096];
	int p[2], old;
	uint64_t dropped;

	REQUIRE(pipe(p) == 0);
	REQUIRE(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
	memset(chunk, 'z', sizeof(chunk));
	while (write(p[1], chunk, sizeof(chunk)) > 0)
		;
	while (write(p[1], chunk, 1) > 0)
		;
	log_reset();
	old = log_set_fd(p[1]);
	dropped = log_dropped();
	errno = ERANGE;
	LOG_WARN("proxy", "lost %m");
	CHECK(errno == ERANGE);
	CHECK(log_dropped() == dropped + 1);
	log_set_fd(old);
	close(p[0]);
	close(p[1]);
	log_reset();
}
