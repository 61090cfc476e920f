/*
 * libFuzzer target for log_format_line (core/log.c).
 *
 * Input layout: byte 0 picks the level (bits 0-2) and the output buffer size
 * (bits 3-7); bytes 1-12 are the timestamp (8 bytes of seconds, 4 of
 * nanoseconds, host order); the rest is "module NUL message", or just the
 * message (and no module) when it holds no NUL. Short inputs use defaults.
 *
 * Every input is formatted in both formats and each line must:
 *  - fit the buffer and end with the only '\n' it holds,
 *  - hold no other control byte and be valid UTF-8,
 *  - JSON: be exactly {"ts":S,"level":S[,"module":S],"msg":S} with strings
 *    in strict JSON syntax; the level must name the input level,
 *  - give the input back: the decoded message equals the input (or, when
 *    the line ends with LOG_TRUNC_MARK, a prefix of it); in JSON this holds
 *    for valid UTF-8 input, in text mode for any input (\xHH is lossless).
 * A violation abort()s.
 *
 * Build and run (new corpus entries go to the temp dir, not the repo):
 *   clang -fsanitize=fuzzer,address,undefined -Isrc \
 *     test/fuzz/fuzz_log_format.c src/core/log.c src/core/str.c \
 *     src/core/mem.c src/core/buf.c -o /tmp/fz
 *   mkdir -p /tmp/fzc && /tmp/fz -max_total_time=20 /tmp/fzc \
 *     test/fuzz/corpus/log_format/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"

#define FZ_MODULE_MAX 512

static void fz_check(int ok)
{
	if (!ok)
		abort();
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static int fz_utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t v, min;
		size_t need, k;

		if (c < 0x80) {
			i++;
			continue;
		}
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
		if (n - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			v = (v << 6) | (s[i + k] & 0x3f);
		}
		if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int fz_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends the UTF-8 form of <cp> (< 0x10000, not a surrogate). */
static size_t fz_put_utf8(unsigned char *d, uint32_t cp)
{
	if (cp < 0x80) {
		d[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (unsigned char)(0xc0 | (cp >> 6));
		d[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	d[0] = (unsigned char)(0xe0 | (cp >> 12));
	d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	d[2] = (unsigned char)(0x80 | (cp & 0x3f));
	return 3;
}

/*
 * Checks one JSON string starting at <*pp> (the opening quote) and ending
 * before <end>; decodes it into <dec> (room for as many bytes as the source
 * has) and stores the decoded length in <*declen>. Advances <*pp> past the
 * closing quote. Returns 0 on a syntax violation.
 */
static int fz_json_string(const unsigned char **pp, const unsigned char *end,
                          unsigned char *dec, size_t *declen)
{
	const unsigned char *p = *pp;
	size_t d = 0;

	if (p >= end || *p++ != '"')
		return 0;
	while (p < end) {
		unsigned char c = *p;

		if (c == '"') {
			*pp = p + 1;
			*declen = d;
			return 1;
		}
		if (c < 0x20)
			return 0;
		if (c != '\\') {
			dec[d++] = c;
			p++;
			continue;
		}
		if (++p >= end)
			return 0;
		switch (*p) {
		case '"': dec[d++] = '"'; break;
		case '\\': dec[d++] = '\\'; break;
		case '/': dec[d++] = '/'; break;
		case 'b': dec[d++] = '\b'; break;
		case 'f': dec[d++] = '\f'; break;
		case 'n': dec[d++] = '\n'; break;
		case 'r': dec[d++] = '\r'; break;
		case 't': dec[d++] = '\t'; break;
		case 'u': {
			uint32_t cp = 0;
			int k, h;

			if (end - p < 5)
				return 0;
			for (k = 1; k <= 4; k++) {
				h = fz_hexval(p[k]);
				if (h < 0)
					return 0;
				cp = (cp << 4) | (uint32_t)h;
			}
			/* the formatter never needs surrogate pairs */
			if (cp >= 0xd800 && cp <= 0xdfff)
				return 0;
			d += fz_put_utf8(dec + d, cp);
			p += 4;
			break;
		}
		default:
			return 0;
		}
		p++;
	}
	return 0;
}

/* Expects the bytes of <lit> at <*pp> and skips them. */
static int fz_lit(const unsigned char **pp, const unsigned char *end,
                  const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *pp) < n || memcmp(*pp, lit, n) != 0)
		return 0;
	*pp += n;
	return 1;
}

/* <dec> is <orig>, or <orig>'s prefix followed by LOG_TRUNC_MARK. */
static int fz_same_or_cut(const unsigned char *dec, size_t declen,
                          const unsigned char *orig, size_t origlen)
{
	size_t ml = sizeof(LOG_TRUNC_MARK) - 1;

	if (declen == origlen && memcmp(dec, orig, declen) == 0)
		return 1;
	if (declen < ml || memcmp(dec + declen - ml, LOG_TRUNC_MARK, ml) != 0)
		return 0;
	declen -= ml;
	return declen <= origlen && memcmp(dec, orig, declen) == 0;
}

/* A prefix of <orig> (module names may be cut without a mark). */
static int fz_prefix(const unsigned char *dec, size_t declen,
                     const unsigned char *orig, size_t origlen)
{
	return declen <= origlen && memcmp(dec, orig, declen) == 0;
}

static const char *const fz_levels[] = {
	"?", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "?", "?",
};

static void fz_check_ts(const unsigned char *p)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	size_t i;

	for (i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd')
			fz_check(p[i] >= '0' && p[i] <= '9');
		else
			fz_check(p[i] == (unsigned char)pat[i]);
	}
}

static void fz_check_json(const unsigned char *line, size_t n, int level,
                          const char *module, const unsigned char *msg,
                          size_t msglen, unsigned char *dec)
{
	const unsigned char *p = line, *end = line + n - 1;
	size_t dl;

	fz_check(fz_lit(&p, end, "{\"ts\":"));
	fz_check(fz_json_string(&p, end, dec, &dl));
	fz_check(dl == 27);
	fz_check_ts(dec);
	fz_check(fz_lit(&p, end, ",\"level\":"));
	fz_check(fz_json_string(&p, end, dec, &dl));
	fz_check(dl == strlen(fz_levels[level]) &&
	         memcmp(dec, fz_levels[level], dl) == 0);
	if (module) {
		fz_check(fz_lit(&p, end, ",\"module\":"));
		fz_check(fz_json_string(&p, end, dec, &dl));
		fz_check(dl > 0);
		if (fz_utf8_ok((const unsigned char *)module, strlen(module)))
			fz_check(fz_prefix(dec, dl,
			                   (const unsigned char *)module,
			                   strlen(module)));
	}
	fz_check(fz_lit(&p, end, ",\"msg\":"));
	fz_check(fz_json_string(&p, end, dec, &dl));
	if (fz_utf8_ok(msg, msglen))
		fz_check(fz_same_or_cut(dec, dl, msg, msglen));
	fz_check(fz_lit(&p, end, "}"));
	fz_check(p == end);
}

/* Undoes the text escapes (\\ \n \r \t \xHH \uXXXX); 0 on a bad escape. */
static int fz_text_decode(const unsigned char *p, const unsigned char *end,
                          unsigned char *dec, size_t *declen)
{
	size_t d = 0;

	while (p < end) {
		if (*p != '\\') {
			dec[d++] = *p++;
			continue;
		}
		if (++p >= end)
			return 0;
		switch (*p) {
		case '\\': dec[d++] = '\\'; p++; break;
		case 'n': dec[d++] = '\n'; p++; break;
		case 'r': dec[d++] = '\r'; p++; break;
		case 't': dec[d++] = '\t'; p++; break;
		case 'x': {
			int h, l;

			if (end - p < 3)
				return 0;
			h = fz_hexval(p[1]);
			l = fz_hexval(p[2]);
			if (h < 0 || l < 0)
				return 0;
			dec[d++] = (unsigned char)(h << 4 | l);
			p += 3;
			break;
		}
		case 'u': {
			uint32_t cp = 0;
			int k, h;

			if (end - p < 5)
				return 0;
			for (k = 1; k <= 4; k++) {
				h = fz_hexval(p[k]);
				if (h < 0)
					return 0;
				cp = (cp << 4) | (uint32_t)h;
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				return 0;
			d += fz_put_utf8(dec + d, cp);
			p += 5;
			break;
		}
		default:
			return 0;
		}
	}
	*declen = d;
	return 1;
}

static void fz_check_text(const unsigned char *line, size_t n, int level,
                          const char *module, const unsigned char *msg,
                          size_t msglen, unsigned char *dec)
{
	const unsigned char *p = line, *end = line + n - 1;
	const char *lname = fz_levels[level];
	size_t dl;

	fz_check(n > 28);
	fz_check_ts(p);
	p += 27;
	fz_check(fz_lit(&p, end, " "));
	fz_check(fz_lit(&p, end, lname));
	fz_check(fz_lit(&p, end, " "));
	if (module) {
		const unsigned char *sep;

		/* the escaped module holds a ':' only if the module does */
		if (strchr(module, ':'))
			return;
		sep = memchr(p, ':', (size_t)(end - p));
		fz_check(sep != NULL && sep + 1 < end && sep[1] == ' ');
		fz_check(fz_text_decode(p, sep, dec, &dl));
		fz_check(dl > 0 && fz_prefix(dec, dl,
		                             (const unsigned char *)module,
		                             strlen(module)));
		p = sep + 2;
	}
	fz_check(fz_text_decode(p, end, dec, &dl));
	fz_check(fz_same_or_cut(dec, dl, msg, msglen));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char modbuf[FZ_MODULE_MAX + 1];
	static unsigned char dec[2 * LOG_LINE_MAX];
	struct timespec ts = { 1795960801, 123456789 };
	const char *module = NULL, *msg = "";
	size_t msglen = 0, outlen, n, i;
	int level = LOG_LEVEL_INFO, f;
	char *out;

	if (size > 0) {
		level = data[0] & 7;
		outlen = data[0] >> 3;
	} else {
		outlen = 31;
	}
	/* 0 -> too small (must write nothing), 31 -> LOG_LINE_MAX */
	outlen = outlen == 0 ? LOG_LINE_MIN - 1
	       : outlen == 31 ? LOG_LINE_MAX
	       : LOG_LINE_MIN + (outlen - 1) * 131;
	if (size >= 13) {
		int64_t sec;
		int32_t nsec;

		memcpy(&sec, data + 1, sizeof(sec));
		memcpy(&nsec, data + 9, sizeof(nsec));
		ts.tv_sec = (time_t)sec;
		ts.tv_nsec = nsec;
		data += 13;
		size -= 13;
	} else {
		size = 0;
	}
	if (size > 0) {
		const uint8_t *nul = memchr(data, 0, size);

		if (nul) {
			size_t ml = (size_t)(nul - data);
			size_t keep = ml < FZ_MODULE_MAX ? ml : FZ_MODULE_MAX;

			memcpy(modbuf, data, keep);
			modbuf[keep] = '\0';
			module = ml ? modbuf : NULL;
			data += ml + 1;
			size -= ml + 1;
		}
		msg = (const char *)data;
		msglen = size;
	}

	out = mem_alloc(outlen);
	if (!out)
		abort();
	for (f = LOG_FORMAT_TEXT; f <= LOG_FORMAT_JSON; f++) {
		n = log_format_line(out, outlen, f, level, module, &ts, msg,
		                    msglen);
		if (outlen < LOG_LINE_MIN) {
			fz_check(n == 0);
			continue;
		}
		fz_check(n >= 1 && n <= outlen);
		fz_check(out[n - 1] == '\n');
		for (i = 0; i + 1 < n; i++) {
			unsigned char c = (unsigned char)out[i];

			fz_check(c >= 0x20 && c != 0x7f);
		}
		fz_check(fz_utf8_ok((const unsigned char *)out, n));
		if (f == LOG_FORMAT_JSON)
			fz_check_json((const unsigned char *)out, n, level,
			              module, (const unsigned char *)msg,
			              msglen, dec);
		else
			fz_check_text((const unsigned char *)out, n, level,
			              module, (const unsigned char *)msg,
			              msglen, dec);
	}
	mem_free(out);
	return 0;
}
