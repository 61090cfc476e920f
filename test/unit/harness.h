/*
 * A tiny TAP-like unit-test harness.
 *
 * Each test file defines tests with TEST(name) { ... } and checks with
 * CHECK(cond) (records a failure and goes on) or REQUIRE(cond) (records a
 * failure and leaves the test). Tests register themselves at load time; the
 * runner (harness.c) runs them in file order, prints one TAP line each
 * ("ok N - file: name" / "not ok N - ...") and, last, "N passed, N failed".
 *
 * `unit_tests NAME-SUBSTRING` runs only the tests whose "file: name" contains
 * the substring.
 */
#ifndef MESHD_TEST_HARNESS_H
#define MESHD_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

struct harness_test {
	const char *file;
	const char *name;
	void (*fn)(void);
	struct harness_test *next;
};

void harness_register(struct harness_test *t);
/* Called by CHECK/REQUIRE on failure; prints a TAP diagnostic line. */
void harness_fail(const char *file, int line, const char *expr);

#define TEST(name)                                                          \
	static void test_##name(void);                                      \
	static struct harness_test test_reg_##name = {                      \
		__FILE__, #name, test_##name, NULL };                       \
	__attribute__((constructor)) static void test_ctor_##name(void)    \
	{ harness_register(&test_reg_##name); }                             \
	static void test_##name(void)

#define CHECK(cond) do {                                                    \
	if (!(cond)) harness_fail(__FILE__, __LINE__, #cond);               \
} while (0)

#define REQUIRE(cond) do {                                                  \
	if (!(cond)) { harness_fail(__FILE__, __LINE__, #cond); return; }   \
} while (0)

/* Compares two NUL-terminated strings and prints both on mismatch. */
#define CHECK_STR(a, b) do {                                                \
	const char *check_a_ = (a), *check_b_ = (b);                        \
	if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {   \
		harness_fail(__FILE__, __LINE__, #a " == " #b);             \
		printf("#   got:      \"%s\"\n#   expected: \"%s\"\n",       \
		       check_a_ ? check_a_ : "(null)",                      \
		       check_b_ ? check_b_ : "(null)");                     \
	}                                                                   \
} while (0)

#endif
