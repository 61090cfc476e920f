/*
 * log: leveled logging. See log.h for the contract.
 *
 * IMPLEMENTATION NOTES
 *
 * Level checks. log_max_level holds the most verbose level of the default
 * and of every override, so the common "disabled" answer is one relaxed load
 * in the inline log_enabled. When no override exists that level is also the
 * answer for "enabled"; otherwise the override table is scanned under a spin
 * lock (log_lock) that log_set_spec holds while it copies a new, already
 * validated table in. The lock is held for a memcpy or a 32-entry scan only.
 * The atomics read outside the lock may be one spec apart for a line or two
 * around a change; that is harmless.
 *
 * Formatting. A writer (struct log_w) appends to a buffer with a hard cap
 * and refuses a piece that does not fit as a whole, so an escape or a UTF-8
 * sequence is never split. Room for the closing bytes ("\"}\n" or "\n") is
 * kept out of the cap from the start, and a message that may not fit is
 * first measured with a counting writer (p == NULL): when it does not fit,
 * the cap shrinks by the truncation mark, the message is written up to the
 * cap and the mark follows. Every input byte becomes at most 6 output bytes,
 * which lets short messages skip the measuring pass.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/str.h"

#define LOG_TS_LEN 27           /* "2026-11-29T14:00:01.123456Z" */
#define LOG_MODULE_OUT_MAX 96   /* escaped module bytes on a line */
#define LOG_ESC_MAX 6           /* output bytes per input byte, at most */
#define LOG_WRITE_TRIES 8       /* write(2) calls per line, at most */

struct log_override {
	char name[LOG_MODULE_MAX + 1];
	size_t len;
	int level;
};

struct log_spec {
	int def;                  /* default level */
	int n;                    /* overrides in use */
	struct log_override ov[LOG_OVERRIDES_MAX];
};

static struct log_spec log_cur = { LOG_LEVEL_INFO, 0, { { "", 0, 0 } } };
static atomic_flag log_lock = ATOMIC_FLAG_INIT;

atomic_int log_max_level = LOG_LEVEL_INFO;
static atomic_int log_has_ov = 0;
static atomic_int log_fmt = LOG_FORMAT_TEXT;
static atomic_int log_fd = 2;
static atomic_uint_fast64_t log_ndropped = 0;

static const char *const log_names[] = {
	"off", "error", "warn", "info", "debug", "trace",
};

static const char *const log_upper[] = {
	"OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE",
};

#define LOG_NLEVELS ((int)(sizeof(log_names) / sizeof(log_names[0])))

static void log_lock_take(void)
{
	while (atomic_flag_test_and_set_explicit(&log_lock,
	                                         memory_order_acquire))
		;
}

static void log_lock_give(void)
{
	atomic_flag_clear_explicit(&log_lock, memory_order_release);
}

int log_level_parse(struct str name, int *level)
{
	int i;

	for (i = 0; i < LOG_NLEVELS; i++) {
		if (str_ieq_cstr(name, log_names[i])) {
			*level = i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(int level)
{
	return level >= 0 && level < LOG_NLEVELS ? log_names[level] : "?";
}

/* The level that applies to <module> under <sp>: the longest override that
 * is <module> itself or a dotted ancestor of it, else the default. */
static int log_spec_level(const struct log_spec *sp, const char *module)
{
	size_t best = 0;
	int lvl = sp->def, i;

	if (!module)
		return lvl;
	for (i = 0; i < sp->n; i++) {
		const struct log_override *o = &sp->ov[i];

		if (o->len <= best || strncmp(module, o->name, o->len) != 0)
			continue;
		/* strncmp matched, so module has at least o->len bytes */
		if (module[o->len] != '\0' && module[o->len] != '.')
			continue;
		best = o->len;
		lvl = o->level;
	}
	return lvl;
}

int log_enabled_slow(int level, const char *module)
{
	int lvl;

	if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_TRACE)
		return 0;
	if (!atomic_load_explicit(&log_has_ov, memory_order_relaxed))
		return level <= atomic_load_explicit(&log_max_level,
		                                     memory_order_relaxed);
	log_lock_take();
	lvl = log_spec_level(&log_cur, module);
	log_lock_give();
	return level <= lvl;
}

/* Copies at most 40 bytes of <s> for an error message, replacing what is not
 * printable ASCII (and '"') by '?', so <err> is safe to echo anywhere. */
static const char *log_err_quote(struct str s, char *tmp, size_t tmplen)
{
	size_t i, n = s.len;
	int cut = 0;

	if (n > 40 || n > tmplen - 4) {
		n = 40 < tmplen - 4 ? 40 : tmplen - 4;
		cut = 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s.p[i];

		tmp[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
	}
	if (cut) {
		memcpy(tmp + n, "...", 3);
		n += 3;
	}
	tmp[n] = '\0';
	return tmp;
}

static void log_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void log_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Dotted segments of [A-Za-z0-9_-], 1..LOG_MODULE_MAX bytes. */
static int log_module_valid(struct str m)
{
	size_t i;
	int seglen = 0;

	if (m.len == 0 || m.len > LOG_MODULE_MAX)
		return 0;
	for (i = 0; i < m.len; i++) {
		unsigned char c = (unsigned char)m.p[i];

		if (c == '.') {
			if (seglen == 0)
				return 0;
			seglen = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
		seglen++;
	}
	return seglen > 0;
}

/* Parses <spec> into <sp>; on error fills <err> and returns -1. */
static int log_spec_parse(struct str spec, struct log_spec *sp,
                          char *err, size_t errlen)
{
	struct str rest = spec, item;
	char q[48];
	int have_def = 0, nitem = 0, i;

	memset(sp, 0, sizeof(*sp));
	sp->def = LOG_LEVEL_INFO;
	if (str_trim_ows(spec).len == 0) {
		log_err(err, errlen, "empty log level spec");
		return -1;
	}
	while (str_next_token(&rest, ',', &item)) {
		struct str name, lvl;
		ssize_t eq;
		int level;

		nitem++;
		item = str_trim_ows(item);
		if (item.len == 0) {
			log_err(err, errlen, "empty item %d in log level spec",
			        nitem);
			return -1;
		}
		eq = str_find_char(item, '=');
		if (eq < 0) {
			if (log_level_parse(item, &level) < 0) {
				log_err(err, errlen, "unknown log level \"%s\"",
				        log_err_quote(item, q, sizeof(q)));
				return -1;
			}
			if (have_def) {
				log_err(err, errlen,
				        "default log level given twice");
				return -1;
			}
			have_def = 1;
			sp->def = level;
			continue;
		}
		name = str_trim_ows(str_sub(item, 0, (size_t)eq));
		lvl = str_trim_ows(str_sub(item, (size_t)eq + 1, item.len));
		if (!log_module_valid(name)) {
			log_err(err, errlen, "invalid module name \"%s\" "
			        "(dotted [A-Za-z0-9_-] segments, at most %d "
			        "bytes)", log_err_quote(name, q, sizeof(q)),
			        LOG_MODULE_MAX);
			return -1;
		}
		if (log_level_parse(lvl, &level) < 0) {
			log_err(err, errlen, "unknown log level \"%s\" for "
			        "module %.*s", log_err_quote(lvl, q, sizeof(q)),
			        (int)name.len, name.p);
			return -1;
		}
		for (i = 0; i < sp->n; i++) {
			if (str_eq(str_make(sp->ov[i].name, sp->ov[i].len),
			           name)) {
				log_err(err, errlen, "module %.*s given twice",
				        (int)name.len, name.p);
				return -1;
			}
		}
		if (sp->n == LOG_OVERRIDES_MAX) {
			log_err(err, errlen, "too many module overrides "
			        "(at most %d)", LOG_OVERRIDES_MAX);
			return -1;
		}
		memcpy(sp->ov[sp->n].name, name.p, name.len);
		sp->ov[sp->n].name[name.len] = '\0';
		sp->ov[sp->n].len = name.len;
		sp->ov[sp->n].level = level;
		sp->n++;
	}
	return 0;
}

/* Installs a validated spec. */
static void log_spec_apply(const struct log_spec *sp)
{
	int max = sp->def, i;

	for (i = 0; i < sp->n; i++) {
		if (sp->ov[i].level > max)
			max = sp->ov[i].level;
	}
	log_lock_take();
	log_cur = *sp;
	atomic_store_explicit(&log_has_ov, sp->n > 0, memory_order_relaxed);
	atomic_store_explicit(&log_max_level, max, memory_order_relaxed);
	log_lock_give();
}

int log_set_spec_str(struct str spec, char *err, size_t errlen)
{
	struct log_spec sp;

	if (log_spec_parse(spec, &sp, err, errlen) < 0)
		return -1;
	log_spec_apply(&sp);
	return 0;
}

int log_set_spec(const char *spec, char *err, size_t errlen)
{
	return log_set_spec_str(str_from_cstr(spec), err, errlen);
}

int log_get_spec(char *out, size_t outlen)
{
	struct log_spec sp;
	size_t len = 0;
	int i, n;

	if (outlen == 0)
		return -1;
	log_lock_take();
	sp = log_cur;
	log_lock_give();
	n = snprintf(out, outlen, "%s", log_level_name(sp.def));
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	len = (size_t)n;
	for (i = 0; i < sp.n; i++) {
		n = snprintf(out + len, outlen - len, ",%s=%s", sp.ov[i].name,
		             log_level_name(sp.ov[i].level));
		if (n < 0 || (size_t)n >= outlen - len)
			return -1;
		len += (size_t)n;
	}
	return 0;
}

int log_set_format(const char *name)
{
	int f;

	if (!name)
		return -1;
	if (strcmp(name, "text") == 0)
		f = LOG_FORMAT_TEXT;
	else if (strcmp(name, "json") == 0)
		f = LOG_FORMAT_JSON;
	else
		return -1;
	atomic_store_explicit(&log_fmt, f, memory_order_relaxed);
	return 0;
}

int log_get_format(void)
{
	return atomic_load_explicit(&log_fmt, memory_order_relaxed);
}

int log_set_fd(int fd)
{
	return atomic_exchange_explicit(&log_fd, fd, memory_order_relaxed);
}

uint64_t log_dropped(void)
{
	return atomic_load_explicit(&log_ndropped, memory_order_relaxed);
}

void log_reset(void)
{
	struct log_spec sp;

	memset(&sp, 0, sizeof(sp));
	sp.def = LOG_LEVEL_INFO;
	log_spec_apply(&sp);
	atomic_store_explicit(&log_fmt, LOG_FORMAT_TEXT, memory_order_relaxed);
	atomic_store_explicit(&log_fd, 2, memory_order_relaxed);
}

/* ---- formatting ---- */

struct log_w {
	char *p;      /* output, or NULL to count only */
	size_t len;   /* bytes written (or counted) */
	size_t cap;   /* hard cap on len */
};

/* Appends <n> bytes as one piece; -1 (nothing written) when they do not
 * fit. */
static int log_put(struct log_w *w, const char *s, size_t n)
{
	if (n > w->cap - w->len)
		return -1;
	if (w->p)
		memcpy(w->p + w->len, s, n);
	w->len += n;
	return 0;
}

/* Length of the valid UTF-8 sequence at <s> (<n> bytes available) of a
 * non-ASCII lead byte, storing its code point in <*cp>; 0 when the bytes are
 * not valid UTF-8 (bad lead, bad continuation, overlong form, surrogate,
 * above U+10FFFF, or cut short). */
static size_t log_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	uint32_t v, min;
	size_t need, i;

	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < need + 1)
		return 0;
	for (i = 1; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return need + 1;
}

static const char log_hex[] = "0123456789abcdef";

/* Bytes that go out as they are in both formats. */
static inline int log_plain(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Escapes code point <cp> (< 0x10000) as \uXXXX into <tmp>; returns 6. */
static size_t log_esc_u(char *tmp, uint32_t cp)
{
	tmp[0] = '\\';
	tmp[1] = 'u';
	tmp[2] = log_hex[(cp >> 12) & 0xf];
	tmp[3] = log_hex[(cp >> 8) & 0xf];
	tmp[4] = log_hex[(cp >> 4) & 0xf];
	tmp[5] = log_hex[cp & 0xf];
	return 6;
}

/* Escapes a single byte <c> that has no short form: \u00XX in JSON, \xHH
 * in text. Returns the length written to <tmp>. */
static size_t log_esc_byte(char *tmp, int json, unsigned char c)
{
	if (json)
		return log_esc_u(tmp, c);
	tmp[0] = '\\';
	tmp[1] = 'x';
	tmp[2] = log_hex[c >> 4];
	tmp[3] = log_hex[c & 0xf];
	return 4;
}

/*
 * Appends <n> bytes of <s> escaped for the format (see log.h), stopping
 * before the first character that does not fit whole. Returns the input
 * bytes consumed (n when everything fit).
 */
static size_t log_escape(struct log_w *w, int json, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		char tmp[6];
		const char *rep = tmp;
		size_t used = 1, rlen;
		uint32_t cp;

		if (log_plain(c)) {
			size_t run = 1, room = w->cap - w->len;

			while (i + run < n && log_plain(s[i + run]))
				run++;
			if (run > room)
				run = room;
			if (run == 0)
				break;
			log_put(w, src + i, run);
			i += run;
			continue;
		}
		if (c == '\\') {
			rep = "\\\\";
			rlen = 2;
		} else if (c == '\n') {
			rep = "\\n";
			rlen = 2;
		} else if (c == '\r') {
			rep = "\\r";
			rlen = 2;
		} else if (c == '\t') {
			rep = "\\t";
			rlen = 2;
		} else if (c == '"') {
			rep = json ? "\\\"" : "\"";
			rlen = json ? 2 : 1;
		} else if (c < 0x80) {
			/* other C0 controls and DEL */
			rlen = log_esc_byte(tmp, json, c);
		} else if ((used = log_utf8(s + i, n - i, &cp)) == 0) {
			used = 1;
			if (json) {
				rep = "\\ufffd";
				rlen = 6;
			} else {
				rlen = log_esc_byte(tmp, 0, c);
			}
		} else if (cp < 0xa0 || cp == 0x2028 || cp == 0x2029) {
			/* C1 controls and line separators */
			rlen = log_esc_u(tmp, cp);
		} else {
			rep = src + i;
			rlen = used;
		}
		if (log_put(w, rep, rlen) < 0)
			break;
		i += used;
	}
	return i;
}

/* Writes <v> as <width> decimal digits (leading zeros) at <p>. */
static void log_dec(char *p, uint32_t v, int width)
{
	while (width-- > 0) {
		p[width] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days), valid for the clamped range used here. */
static void log_civil(int64_t z, int64_t *y, uint32_t *m, uint32_t *d)
{
	int64_t era;
	uint32_t doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (uint32_t)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z in Unix seconds. */
#define LOG_TS_MIN (-62167219200LL)
#define LOG_TS_MAX 253402300799LL

/* Formats <ts> as LOG_TS_LEN bytes at <out> (no NUL). Does not depend on
 * the locale, the time zone or any static buffer. */
static void log_format_ts(char *out, const struct timespec *ts)
{
	int64_t sec = (int64_t)ts->tv_sec, days, y;
	long nsec = ts->tv_nsec;
	uint32_t m, d, sod;

	if (nsec < 0)
		nsec = 0;
	if (nsec > 999999999L)
		nsec = 999999999L;
	if (sec < LOG_TS_MIN) {
		sec = LOG_TS_MIN;
		nsec = 0;
	} else if (sec > LOG_TS_MAX) {
		sec = LOG_TS_MAX;
		nsec = 999999999L;
	}
	days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
	sod = (uint32_t)(sec - days * 86400);
	log_civil(days, &y, &m, &d);
	log_dec(out, (uint32_t)y, 4);
	out[4] = '-';
	log_dec(out + 5, m, 2);
	out[7] = '-';
	log_dec(out + 8, d, 2);
	out[10] = 'T';
	log_dec(out + 11, sod / 3600, 2);
	out[13] = ':';
	log_dec(out + 14, sod / 60 % 60, 2);
	out[16] = ':';
	log_dec(out + 17, sod % 60, 2);
	out[19] = '.';
	log_dec(out + 20, (uint32_t)(nsec / 1000), 6);
	out[26] = 'Z';
}

/* Appends a module name escaped, cut at LOG_MODULE_OUT_MAX output bytes. */
static void log_put_module(struct log_w *w, int json, const char *module)
{
	size_t cap = w->cap;

	if (w->cap - w->len > LOG_MODULE_OUT_MAX)
		w->cap = w->len + LOG_MODULE_OUT_MAX;
	/* output >= input per character, so more bytes can never fit */
	log_escape(w, json, module, strnlen(module, LOG_MODULE_OUT_MAX + 1));
	w->cap = cap;
}

size_t log_format_line(char *out, size_t outlen, int format, int level,
                       const char *module, const struct timespec *ts,
                       const char *msg, size_t msglen)
{
	int json = format == LOG_FORMAT_JSON;
	const char *close = json ? "\"}\n" : "\n";
	size_t closelen = json ? 3 : 1, room;
	const char *lname = level >= LOG_LEVEL_ERROR &&
	                    level <= LOG_LEVEL_TRACE ? log_upper[level] : "?";
	struct log_w w;
	struct timespec now;
	char tsbuf[LOG_TS_LEN];
	int cut = 0;

	if (!out || outlen < LOG_LINE_MIN)
		return 0;
	if (!ts) {
		clock_gettime(CLOCK_REALTIME, &now);
		ts = &now;
	}
	if (!msg)
		msglen = 0;
	if (module && !*module)
		module = NULL;
	log_format_ts(tsbuf, ts);

	/* LOG_LINE_MIN leaves room for all of the prefix and the mark */
	w.p = out;
	w.len = 0;
	w.cap = outlen - closelen;
	if (json) {
		log_put(&w, "{\"ts\":\"", 7);
		log_put(&w, tsbuf, LOG_TS_LEN);
		log_put(&w, "\",\"level\":\"", 11);
		log_put(&w, lname, strlen(lname));
		log_put(&w, "\"", 1);
		if (module) {
			log_put(&w, ",\"module\":\"", 11);
			log_put_module(&w, 1, module);
			log_put(&w, "\"", 1);
		}
		log_put(&w, ",\"msg\":\"", 8);
	} else {
		log_put(&w, tsbuf, LOG_TS_LEN);
		log_put(&w, " ", 1);
		log_put(&w, lname, strlen(lname));
		log_put(&w, " ", 1);
		if (module) {
			log_put_module(&w, 0, module);
			log_put(&w, ": ", 2);
		}
	}

	room = w.cap - w.len;
	if (msglen > room / LOG_ESC_MAX) {
		struct log_w count = { NULL, 0, room };

		cut = log_escape(&count, json, msg, msglen) < msglen;
	}
	if (cut)
		w.cap -= sizeof(LOG_TRUNC_MARK) - 1;
	log_escape(&w, json, msg, msglen);
	if (cut) {
		w.cap += sizeof(LOG_TRUNC_MARK) - 1;
		log_put(&w, LOG_TRUNC_MARK, sizeof(LOG_TRUNC_MARK) - 1);
	}
	w.cap = outlen;
	log_put(&w, close, closelen);
	return w.len;
}

/* ---- output ---- */

/* Writes one line, retrying EINTR and partial writes a bounded number of
 * times; counts the line as dropped when it cannot go out whole. */
static void log_write(int fd, const char *p, size_t len)
{
	int tries;

	if (fd < 0)
		return;
	for (tries = 0; tries < LOG_WRITE_TRIES && len > 0; tries++) {
		ssize_t n = write(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			break;
		}
	}
	if (len > 0)
		atomic_fetch_add_explicit(&log_ndropped, 1,
		                          memory_order_relaxed);
}

void log_vemit(int level, const char *module, const char *fmt, va_list ap)
{
	/*
	 * msg is as large as line, so a message that vsnprintf had to cut
	 * (LOG_LINE_MAX - 1 bytes) cannot fit next to the prefix and
	 * log_format_line marks it as truncated.
	 */
	char msg[LOG_LINE_MAX];
	char line[LOG_LINE_MAX];
	int saved = errno, n;
	size_t mlen, len;
	struct timespec ts;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0) {
		static const char bad[] = "(unformattable log message)";

		memcpy(msg, bad, sizeof(bad));
		mlen = sizeof(bad) - 1;
	} else {
		mlen = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	len = log_format_line(line, sizeof(line),
	                      atomic_load_explicit(&log_fmt,
	                                           memory_order_relaxed),
	                      level, module, &ts, msg, mlen);
	log_write(atomic_load_explicit(&log_fd, memory_order_relaxed),
	          line, len);
	errno = saved;
}

void log_emit(int level, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, module, fmt, ap);
	va_end(ap);
}
