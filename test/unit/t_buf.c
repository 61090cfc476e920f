#include <string.h>

#include "harness.h"
#include "core/buf.h"
#include "core/mem.h"

TEST(append_consume_and_limit)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK(buf_append(&b, "hello", 5) == 0);
	CHECK(buf_append(&b, "world", 5) == 0);
	CHECK(buf_len(&b) == 10);
	CHECK(buf_append(&b, "!", 1) == -1); /* hard limit */
	CHECK(buf_len(&b) == 10);
	CHECK(memcmp(buf_data(&b), "helloworld", 10) == 0);
	buf_consume(&b, 5);
	CHECK(buf_room(&b) == 5);
	CHECK(buf_append(&b, "12345", 5) == 0); /* slides content to the front */
	CHECK(memcmp(buf_data(&b), "world12345", 10) == 0);
	buf_free(&b);
	CHECK(buf_len(&b) == 0);
}

TEST(printf_grows_to_limit_only)
{
	struct buf b;

	buf_init(&b, 1000);
	CHECK(buf_printf(&b, "%d-%s", 42, "x") == 0);
	CHECK(buf_len(&b) == 4);
	CHECK(buf_printf(&b, "%0997d", 7) == -1); /* would pass the limit */
	CHECK(buf_len(&b) == 4);
	CHECK(buf_printf(&b, "%0300d", 7) == 0);
	CHECK(buf_len(&b) == 304);
	CHECK_STR(buf_cstr(&b) + 300, "0007");
	buf_free(&b);
}

TEST(fixed_storage_never_grows)
{
	char store[8];
	struct buf b;

	buf_init_fixed(&b, store, sizeof(store));
	CHECK(buf_append_str(&b, "1234567") == 0);
	CHECK(buf_cstr(&b) != NULL);
	CHECK(buf_append_str(&b, "89") == -1);
	CHECK(buf_cstr(&b) != NULL && strcmp(store, "1234567") == 0);
	buf_free(&b); /* must not free the caller's storage */
}

TEST(reserve_fails_cleanly_on_oom)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	mem_fail_after(1);
	CHECK(buf_append(&b, "abc", 3) == -1);
	mem_fail_reset();
	CHECK(buf_len(&b) == 0);
	CHECK(buf_append(&b, "abc", 3) == 0);
	buf_free(&b);
}
