/*
 * version: the report printed by `meshd version` and used in logs and the
 * admin server. Library versions are asked of the libraries themselves where
 * they can say (libev, nghttp2); the Debian package versions come from the
 * verified pins.
 */
#include <stdio.h>

#include <ev.h>
#include <nghttp2/nghttp2.h>
#include <yaml.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "core/version.h"
#include "version-gen.h"

const char *version_commit(void)
{
	return MESHD_GIT_COMMIT;
}

void version_print(int fd)
{
	const nghttp2_info *h2 = nghttp2_version(0);
	char ev[16];

	dprintf(fd, "meshd %s (commit %s, built %s)\n", MESHD_VERSION,
	        MESHD_GIT_COMMIT, MESHD_BUILD_FLAVOR);
	dprintf(fd, "  bearssl  0.6          (Debian source %s)\n", MESHD_DEP_BEARSSL_DEBIAN);
	snprintf(ev, sizeof(ev), "%d.%d", ev_version_major(), ev_version_minor());
	dprintf(fd, "  libev    %-12s (Debian source %s)\n", ev, MESHD_DEP_LIBEV_DEBIAN);
	dprintf(fd, "  nghttp2  %-12s (Debian source %s)\n", h2->version_str,
	        MESHD_DEP_NGHTTP2_DEBIAN);
	dprintf(fd, "  libyaml  %-12s (Debian source %s)\n", yaml_get_version_string(),
	        MESHD_DEP_LIBYAML_DEBIAN);
#ifdef __GLIBC__
	dprintf(fd, "  libc     glibc %s\n", gnu_get_libc_version());
#else
	dprintf(fd, "  libc     %s\n", MESHD_LIBC);
#endif
	if (MESHD_DEPS_UNPINNED[0])
		dprintf(fd, "  WARNING: UNPINNED dependencies (pinned version left the archive): %s\n",
		        MESHD_DEPS_UNPINNED);
}
