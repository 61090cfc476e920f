#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "core/str.h"

TEST(literals_and_cstr)
{
	struct str a = STR_LIT("hello");
	struct str n = str_from_cstr(NULL);
	struct str e = str_from_cstr("");
	static const struct str st = STR_INIT("st");

	CHECK(a.len == 5 && memcmp(a.p, "hello", 5) == 0);
	CHECK(n.p == NULL && n.len == 0 && str_empty(n));
	CHECK(e.p != NULL && e.len == 0 && str_empty(e));
	CHECK(st.len == 2);
	CHECK(str_eq(n, e)); /* both empty */
	CHECK(str_eq(str_from_cstr("hello"), a));
}

TEST(equality_and_case)
{
	CHECK(str_eq(STR_LIT("abc"), STR_LIT("abc")));
	CHECK(!str_eq(STR_LIT("abc"), STR_LIT("abd")));
	CHECK(!str_eq(STR_LIT("abc"), STR_LIT("ab")));
	CHECK(str_eq_cstr(STR_LIT("abc"), "abc"));
	CHECK(!str_eq_cstr(STR_LIT("abc"), "abcd"));
	CHECK(str_eq_cstr(STR_NULL, ""));
	CHECK(str_ieq(STR_LIT("Content-Length"), STR_LIT("content-LENGTH")));
	CHECK(!str_ieq(STR_LIT("Content-Length"), STR_LIT("content-lengtx")));
	/* only ASCII letters fold: '@' (0x40) and '`' (0x60) stay apart */
	CHECK(!str_ieq(STR_LIT("@"), STR_LIT("`")));
	CHECK(!str_ieq(STR_LIT("[") , STR_LIT("{")));
	CHECK(!str_ieq(STR_LIT("\xc9"), STR_LIT("\xe9")));
	CHECK(str_ieq_cstr(STR_LIT("GET"), "get"));
	CHECK(!str_ieq_cstr(STR_LIT("GET"), "ge"));
	/* embedded NUL bytes are compared, not terminators */
	CHECK(!str_eq(str_make("a\0b", 3), str_make("a\0c", 3)));
}

TEST(prefix_suffix)
{
	struct str s = STR_LIT("controller.bus");

	CHECK(str_has_prefix(s, STR_LIT("controller")));
	CHECK(str_has_prefix(s, STR_LIT("")));
	CHECK(str_has_prefix(s, s));
	CHECK(!str_has_prefix(s, STR_LIT("controller.bus.x")));
	CHECK(!str_has_prefix(s, STR_LIT("Controller")));
	CHECK(str_ihas_prefix(s, STR_LIT("CONTROLLER.")));
	CHECK(str_has_suffix(s, STR_LIT(".bus")));
	CHECK(str_has_suffix(s, STR_LIT("")));
	CHECK(!str_has_suffix(s, STR_LIT("bu")));
	CHECK(!str_has_suffix(STR_LIT("s"), STR_LIT("bus")));
	CHECK(str_has_prefix(STR_NULL, STR_NULL));
	CHECK(!str_has_prefix(STR_NULL, STR_LIT("a")));
}

TEST(trim_ows)
{
	struct str t;

	t = str_trim_ows(STR_LIT(" \t gzip, br \t"));
	CHECK(str_eq_cstr(t, "gzip, br"));
	t = str_trim_ows(STR_LIT(" \t "));
	CHECK(t.len == 0);
	t = str_trim_ows(STR_LIT("x"));
	CHECK(str_eq_cstr(t, "x"));
	/* only SP and HTAB are OWS */
	t = str_trim_ows(STR_LIT("\r\nx\n"));
	CHECK(str_eq_cstr(t, "\r\nx\n"));
	t = str_trim_ows(STR_NULL);
	CHECK(t.len == 0);
}

TEST(find_and_sub)
{
	struct str s = STR_LIT("host:8080:x");

	CHECK(str_find_char(s, ':') == 4);
	CHECK(str_rfind_char(s, ':') == 9);
	CHECK(str_find_char(s, '#') == -1);
	CHECK(str_rfind_char(s, '#') == -1);
	CHECK(str_find_char(STR_NULL, ':') == -1);
	CHECK(str_rfind_char(STR_LIT("h"), 'h') == 0);
	CHECK(str_eq_cstr(str_sub(s, 5, 4), "8080"));
	CHECK(str_eq_cstr(str_sub(s, 5, 100), "8080:x"));
	CHECK(str_sub(s, 100, 1).len == 0);
	CHECK(str_sub(s, 100, 1).p == s.p + s.len);
}

TEST(tokenizer_exact_split)
{
	struct str rest = STR_LIT("a,,b,");
	struct str tok;

	CHECK(str_next_token(&rest, ',', &tok) == 1 && str_eq_cstr(tok, "a"));
	CHECK(str_next_token(&rest, ',', &tok) == 1 && str_eq_cstr(tok, ""));
	CHECK(str_next_token(&rest, ',', &tok) == 1 && str_eq_cstr(tok, "b"));
	CHECK(str_next_token(&rest, ',', &tok) == 1 && str_eq_cstr(tok, ""));
	CHECK(str_next_token(&rest, ',', &tok) == 0);
	CHECK(tok.p == NULL && tok.len == 0);
	CHECK(str_next_token(&rest, ',', &tok) == 0);

	rest = STR_LIT("");
	CHECK(str_next_token(&rest, ',', &tok) == 1 && tok.len == 0);
	CHECK(str_next_token(&rest, ',', &tok) == 0);

	rest = STR_NULL;
	CHECK(str_next_token(&rest, ',', &tok) == 0);

	rest = STR_LIT("only");
	CHECK(str_next_token(&rest, ';', &tok) == 1);
	CHECK(str_eq_cstr(tok, "only"));
	CHECK(str_next_token(&rest, ';', &tok) == 0);
}

TEST(tokenizer_points_into_input)
{
	const char *in = "k1=v1;k2=v2";
	struct str rest = str_from_cstr(in), tok;
	int n = 0;

	while (str_next_token(&rest, ';', &tok)) {
		CHECK(tok.p >= in && tok.p + tok.len <= in + strlen(in));
		n++;
	}
	CHECK(n == 2);
}

TEST(to_lower)
{
	char out[8];
	char inplace[] = "MiXeD";
	struct str r;

	CHECK(str_to_lower(STR_LIT("HeLLo-1Z"), out, sizeof(out), &r) == 0);
	CHECK(r.p == out && r.len == 8 && memcmp(out, "hello-1z", 8) == 0);
	memset(out, 'q', sizeof(out));
	CHECK(str_to_lower(STR_LIT("TOO LONG!"), out, sizeof(out), &r) == -1);
	CHECK(out[0] == 'q'); /* nothing written */
	CHECK(str_to_lower(str_make(inplace, 5), inplace, 5, &r) == 0);
	CHECK_STR(inplace, "mixed");
	CHECK(str_to_lower(STR_LIT("\xc9@["), out, sizeof(out), &r) == 0);
	CHECK(memcmp(out, "\xc9@[", 3) == 0);
	CHECK(str_to_lower(STR_NULL, out, 0, &r) == 0 && r.len == 0);
}

TEST(copy_cstr)
{
	char d[6];

	CHECK(str_copy_cstr(d, sizeof(d), STR_LIT("abcde")) == 0);
	CHECK_STR(d, "abcde");
	CHECK(str_copy_cstr(d, sizeof(d), STR_LIT("abcdef")) == -1);
	CHECK_STR(d, "abcde"); /* truncated, still terminated */
	CHECK(str_copy_cstr(d, sizeof(d), STR_NULL) == 0);
	CHECK_STR(d, "");
	CHECK(str_copy_cstr(d, sizeof(d), str_make("ab\0cd", 5)) == -1);
	CHECK_STR(d, "ab");
	CHECK(str_copy_cstr(d, 0, STR_LIT("a")) == -1);
	CHECK(str_copy_cstr(d, 1, STR_LIT("a")) == -1);
	CHECK_STR(d, "");
}

TEST(u64_strict)
{
	uint64_t v = 77;

	CHECK(str_to_u64(STR_LIT("0"), &v) == 0 && v == 0);
	CHECK(str_to_u64(STR_LIT("007"), &v) == 0 && v == 7);
	CHECK(str_to_u64(STR_LIT("18446744073709551615"), &v) == 0);
	CHECK(v == UINT64_MAX);
	v = 77;
	CHECK(str_to_u64(STR_LIT("18446744073709551616"), &v) == -1);
	CHECK(str_to_u64(STR_LIT("99999999999999999999"), &v) == -1);
	CHECK(str_to_u64(STR_LIT(""), &v) == -1);
	CHECK(str_to_u64(STR_NULL, &v) == -1);
	CHECK(str_to_u64(STR_LIT("+1"), &v) == -1);
	CHECK(str_to_u64(STR_LIT("-1"), &v) == -1);
	CHECK(str_to_u64(STR_LIT(" 1"), &v) == -1);
	CHECK(str_to_u64(STR_LIT("1 "), &v) == -1);
	CHECK(str_to_u64(STR_LIT("1a"), &v) == -1);
	CHECK(str_to_u64(STR_LIT("0x10"), &v) == -1);
	CHECK(str_to_u64(str_make("1\0", 2), &v) == -1);
	CHECK(v == 77); /* untouched on error */
	/* the slice bounds the number, not a NUL */
	CHECK(str_to_u64(str_make("12345", 2), &v) == 0 && v == 12);
}

TEST(hex_strict)
{
	uint64_t v = 5;

	CHECK(str_to_u64_hex(STR_LIT("0"), &v) == 0 && v == 0);
	CHECK(str_to_u64_hex(STR_LIT("1aF"), &v) == 0 && v == 0x1af);
	CHECK(str_to_u64_hex(STR_LIT("ffffffffffffffff"), &v) == 0);
	CHECK(v == UINT64_MAX);
	CHECK(str_to_u64_hex(STR_LIT("0000000000000000001"), &v) == 0);
	CHECK(v == 1);
	v = 5;
	CHECK(str_to_u64_hex(STR_LIT("10000000000000000"), &v) == -1);
	CHECK(str_to_u64_hex(STR_LIT("0x1"), &v) == -1);
	CHECK(str_to_u64_hex(STR_LIT("g"), &v) == -1);
	CHECK(str_to_u64_hex(STR_LIT(""), &v) == -1);
	CHECK(str_to_u64_hex(STR_LIT("a;ext"), &v) == -1);
	CHECK(str_to_u64_hex(STR_LIT("-1"), &v) == -1);
	CHECK(v == 5);
}

TEST(i64_strict)
{
	int64_t v = 3;

	CHECK(str_to_i64(STR_LIT("-42"), &v) == 0 && v == -42);
	CHECK(str_to_i64(STR_LIT("42"), &v) == 0 && v == 42);
	CHECK(str_to_i64(STR_LIT("-0"), &v) == 0 && v == 0);
	CHECK(str_to_i64(STR_LIT("9223372036854775807"), &v) == 0);
	CHECK(v == INT64_MAX);
	CHECK(str_to_i64(STR_LIT("-9223372036854775808"), &v) == 0);
	CHECK(v == INT64_MIN);
	v = 3;
	CHECK(str_to_i64(STR_LIT("9223372036854775808"), &v) == -1);
	CHECK(str_to_i64(STR_LIT("-9223372036854775809"), &v) == -1);
	CHECK(str_to_i64(STR_LIT("-"), &v) == -1);
	CHECK(str_to_i64(STR_LIT("--1"), &v) == -1);
	CHECK(str_to_i64(STR_LIT("+1"), &v) == -1);
	CHECK(str_to_i64(STR_LIT(""), &v) == -1);
	CHECK(v == 3);
}

TEST(durations)
{
	uint64_t v = 9;

	CHECK(str_to_duration_ms(STR_LIT("10s"), &v) == 0 && v == 10000);
	CHECK(str_to_duration_ms(STR_LIT("100ms"), &v) == 0 && v == 100);
	CHECK(str_to_duration_ms(STR_LIT("1m"), &v) == 0 && v == 60000);
	CHECK(str_to_duration_ms(STR_LIT("2h"), &v) == 0 && v == 7200000);
	CHECK(str_to_duration_ms(STR_LIT("1d"), &v) == 0 && v == 86400000);
	CHECK(str_to_duration_ms(STR_LIT("0"), &v) == 0 && v == 0);
	CHECK(str_to_duration_ms(STR_LIT("0s"), &v) == 0 && v == 0);
	/* sub-millisecond rounds up, never to zero */
	CHECK(str_to_duration_ms(STR_LIT("500us"), &v) == 0 && v == 1);
	CHECK(str_to_duration_ms(STR_LIT("1000us"), &v) == 0 && v == 1);
	CHECK(str_to_duration_ms(STR_LIT("1001us"), &v) == 0 && v == 2);
	CHECK(str_to_duration_ms(STR_LIT("0us"), &v) == 0 && v == 0);
	CHECK(str_to_duration_us(STR_LIT("500us"), &v) == 0 && v == 500);
	CHECK(str_to_duration_us(STR_LIT("3ms"), &v) == 0 && v == 3000);
	CHECK(str_to_duration_us(STR_LIT("0"), &v) == 0 && v == 0);
	/* ms does not overflow where us would */
	CHECK(str_to_duration_ms(STR_LIT("1000000000000h"), &v) == 0);
	CHECK(v == 3600000000000000000ULL);
	CHECK(str_to_duration_us(STR_LIT("1000000000000h"), &v) == -1);
	v = 9;
	CHECK(str_to_duration_ms(STR_LIT("100"), &v) == -1); /* no unit */
	CHECK(str_to_duration_ms(STR_LIT("s"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT(""), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT("10S"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT("10 s"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT(" 10s"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT("1.5s"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT("1m30s"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT("-1s"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT("10sec"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT("10ns"), &v) == -1);
	CHECK(str_to_duration_ms(STR_LIT("18446744073709551615s"), &v) == -1);
	CHECK(v == 9);
}

TEST(sizes)
{
	uint64_t v = 4;

	CHECK(str_to_size(STR_LIT("512"), &v) == 0 && v == 512);
	CHECK(str_to_size(STR_LIT("512B"), &v) == 0 && v == 512);
	CHECK(str_to_size(STR_LIT("64KiB"), &v) == 0 && v == 65536);
	CHECK(str_to_size(STR_LIT("64Ki"), &v) == 0 && v == 65536);
	CHECK(str_to_size(STR_LIT("1MiB"), &v) == 0 && v == 1048576);
	CHECK(str_to_size(STR_LIT("2Gi"), &v) == 0 && v == 2ULL << 30);
	CHECK(str_to_size(STR_LIT("1TiB"), &v) == 0 && v == 1ULL << 40);
	CHECK(str_to_size(STR_LIT("3k"), &v) == 0 && v == 3000);
	CHECK(str_to_size(STR_LIT("3kB"), &v) == 0 && v == 3000);
	CHECK(str_to_size(STR_LIT("5MB"), &v) == 0 && v == 5000000);
	CHECK(str_to_size(STR_LIT("0"), &v) == 0 && v == 0);
	CHECK(str_to_size(STR_LIT("16777215TiB"), &v) == 0);
	CHECK(v == 16777215ULL << 40);
	v = 4;
	CHECK(str_to_size(STR_LIT("16777216TiB"), &v) == -1); /* 2^64 */
	CHECK(str_to_size(STR_LIT("1kib"), &v) == -1);
	CHECK(str_to_size(STR_LIT("1KIB"), &v) == -1);
	CHECK(str_to_size(STR_LIT("1 KiB"), &v) == -1);
	CHECK(str_to_size(STR_LIT("KiB"), &v) == -1);
	CHECK(str_to_size(STR_LIT("1.5MiB"), &v) == -1);
	CHECK(str_to_size(STR_LIT("-1"), &v) == -1);
	CHECK(str_to_size(STR_LIT(""), &v) == -1);
	CHECK(str_to_size(STR_LIT("1PiB"), &v) == -1);
	CHECK(v == 4);
}
