/*
 * libFuzzer target for controller/registry: registry_parse on any input.
 *
 * The first byte picks the format ('j' -> JSON when even, YAML when odd),
 * the rest is the file. Invariants checked (abort() on violation):
 *  - an error leaves *out NULL and writes one "FILE:LINE:COL: message"
 *    line (the file name, a colon, digits, a colon, digits);
 *  - a registry is sorted by (ns, name), registry_find finds every
 *    service, every endpoint list is strictly increasing by address with
 *    the port's target port and a workload of the service's namespace,
 *    and nendpoints is the sum of the lists;
 *  - everything is freed (ASan's leak check).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controller/registry.h"

#define FZ_ASSERT(c) do { if (!(c)) abort(); } while (0)

static int fz_ep_cmp(const struct registry_endpoint *a,
                     const struct registry_endpoint *b)
{
	if (a->iplen != b->iplen)
		return a->iplen < b->iplen ? -1 : 1;
	return memcmp(a->ip, b->ip, a->iplen);
}

static void fz_check_err(const char *err)
{
	const char *p = err;
	int i;

	FZ_ASSERT(strncmp(p, "fz:", 3) == 0);
	p += 3;
	for (i = 0; i < 2; i++) {
		FZ_ASSERT(*p >= '1' && *p <= '9');
		while (*p >= '0' && *p <= '9')
			p++;
		FZ_ASSERT(*p == ':');
		p++;
	}
	FZ_ASSERT(*p == ' ' && strchr(err, '\n') == NULL);
}

static void fz_check(const struct registry *r)
{
	size_t i, j, k, total = 0;

	for (i = 0; i < r->nservices; i++) {
		const struct registry_service *s = &r->services[i];

		if (i) {
			const struct registry_service *p = &r->services[i - 1];
			int d = strcmp(p->ns, s->ns);

			FZ_ASSERT(d < 0 || (d == 0 &&
			                    strcmp(p->name, s->name) < 0));
		}
		FZ_ASSERT(registry_find(r, str_from_cstr(s->name),
		                        str_from_cstr(s->ns)) == s);
		FZ_ASSERT(s->nports >= 1);
		for (j = 0; j < s->nports; j++) {
			const struct registry_port *p = &s->ports[j];

			FZ_ASSERT(registry_service_port(s, p->port) == p);
			for (k = 0; k < p->neps; k++) {
				FZ_ASSERT(p->eps[k].port == p->target_port);
				FZ_ASSERT(strcmp(p->eps[k].workload->ns,
				                 s->ns) == 0);
				if (k)
					FZ_ASSERT(fz_ep_cmp(&p->eps[k - 1],
					                    &p->eps[k]) < 0);
			}
			total += p->neps;
		}
		(void)registry_route_match(s, STR_LIT("GET"),
		                           STR_LIT("/x?y"));
	}
	FZ_ASSERT(total == r->nendpoints);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry *r = NULL;
	char err[256];
	int fmt;

	if (size < 1)
		return 0;
	fmt = (data[0] & 1) ? 'y' : 'j';
	err[0] = '\0';
	if (registry_parse((const char *)data + 1, size - 1, "fz", fmt, &r,
	                   err, sizeof(err)) < 0) {
		FZ_ASSERT(r == NULL);
		fz_check_err(err);
		return 0;
	}
	FZ_ASSERT(r != NULL && err[0] == '\0');
	fz_check(r);
	registry_free(r);
	return 0;
}
