/*
 * Runner for the unit tests declared with TEST() in test/unit/t_*.c.
 * Exit status: 0 when every selected test passed, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct harness_test *harness_head;
static struct harness_test **harness_tail = &harness_head;
static int harness_failed_now;

void harness_register(struct harness_test *t)
{
	t->next = NULL;
	*harness_tail = t;
	harness_tail = &t->next;
}

void harness_fail(const char *file, int line, const char *expr)
{
	harness_failed_now = 1;
	printf("#   failed: %s:%d: %s\n", file, line, expr);
	fflush(stdout);
}

/* "test/unit/t_buf.c" -> "buf" */
static const char *harness_short(const char *file, char *out, size_t outlen)
{
	const char *base = strrchr(file, '/');
	size_t len;

	base = base ? base + 1 : file;
	if (strncmp(base, "t_", 2) == 0)
		base += 2;
	len = strcspn(base, ".");
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, base, len);
	out[len] = '\0';
	return out;
}

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	struct harness_test *t;
	int n = 0, passed = 0, failed = 0;
	char mod[64], full[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (t = harness_head; t; t = t->next) {
		snprintf(full, sizeof(full), "%s: %s",
		         harness_short(t->file, mod, sizeof(mod)), t->name);
		if (filter && !strstr(full, filter))
			continue;
		harness_failed_now = 0;
		t->fn();
		n++;
		if (harness_failed_now) {
			failed++;
			printf("not ok %d - %s\n", n, full);
		} else {
			passed++;
			printf("ok %d - %s\n", n, full);
		}
	}
	printf("1..%d\n", n);
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
