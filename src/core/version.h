/*
 * version: what this binary is made of. The values come from the build
 * (build/gen/version-gen.h, written by the Makefile from git and from
 * vendor/deps.sh's record of the Debian packages it verified).
 */
#ifndef MESHD_CORE_VERSION_H
#define MESHD_CORE_VERSION_H

#define MESHD_VERSION "0.1.0-dev"

/* Writes the multi-line version report to <fd>. */
void version_print(int fd);
/* The git commit the binary was built from ("unknown" outside git). */
const char *version_commit(void);

#endif
