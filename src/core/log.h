/*
 * log: leveled logging for every role.
 *
 * Levels, most to least severe: error, warn, info, debug, trace; "off"
 * disables. What is enabled is a level spec in Linkerd's form:
 *
 *     "warn"                                   one default level
 *     "info,proxy=debug,controller.bus=trace"  default + module overrides
 *
 * Items are separated by ',' (spaces and tabs around items, names and '='
 * are ignored). A bare level sets the default (at most once; "info" when the
 * spec has none); "module=level" overrides a module and its sub-modules:
 * "controller" covers "controller" and "controller.bus" but not
 * "controllers", and the longest matching override wins. Module names are
 * dotted ("controller.bus"): segments of [A-Za-z0-9_-], compared
 * case-sensitively, at most LOG_MODULE_MAX bytes. Level names are
 * case-insensitive. At most LOG_OVERRIDES_MAX overrides.
 *
 * Output is one line per message, written with a single write(2) of at most
 * LOG_LINE_MAX (= PIPE_BUF on Linux, so lines from several writers sharing a
 * pipe never interleave) to the configured fd (default 2):
 *
 *   text: 2026-11-29T14:00:01.123456Z INFO proxy: message key=value
 *   json: {"ts":"2026-11-29T14:00:01.123456Z","level":"INFO",
 *          "module":"proxy","msg":"message key=value"}        (one line)
 *
 * Timestamps are UTC with microseconds. Without a module the text form
 * drops "module: " and the JSON form drops the "module" member.
 *
 * Escaping (no log injection: a line is always exactly one line, ends with
 * '\n' and holds no other control byte; output is always valid UTF-8):
 *  - both forms: '\\' -> \\, '\n' -> \n, '\r' -> \r, '\t' -> \t; C1 controls
 *    (U+0080..U+009F) and the line separators U+2028, U+2029 -> \uXXXX.
 *  - text: other C0 controls, DEL and bytes that are not valid UTF-8 -> \xHH.
 *  - json: '"' -> \", other C0 controls and DEL -> \u00XX, each byte that is
 *    not valid UTF-8 -> \ufffd (so the line is always valid JSON).
 * A message that does not fit is cut at a character or escape boundary and
 * ends with LOG_TRUNC_MARK. Module names are cut (without the mark) when
 * their escaped form passes 96 bytes.
 *
 * Contracts:
 *  - Nothing here allocates. log_emit formats on the stack (two buffers of
 *    LOG_LINE_MAX) and leaves errno unchanged, so "%m" and errno checks after
 *    a log call behave.
 *  - The LOG_* macros evaluate their format arguments only when the level is
 *    enabled for the module; the disabled cost is one relaxed atomic load and
 *    a compare (plus a short override scan when some module is more verbose
 *    than the level being checked).
 *  - Configuration may change at run time (the admin /log-level endpoint)
 *    while other threads log; a spec is swapped under a spin lock that
 *    readers take only on that override scan. Logging from signal handlers
 *    is not supported.
 *  - A write that fails (EAGAIN, EPIPE, ...) drops the line and counts it
 *    (log_dropped); EINTR and partial writes are retried a few times only.
 *    The process should ignore SIGPIPE if the fd may be a pipe or socket.
 *  - <syslog.h> defines LOG_INFO and LOG_DEBUG too; it cannot be included in
 *    the same file as this header.
 */
#ifndef MESHD_CORE_LOG_H
#define MESHD_CORE_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/str.h"

#if defined(LOG_INFO) || defined(LOG_DEBUG)
#error "core/log.h conflicts with <syslog.h> (LOG_INFO, LOG_DEBUG)"
#endif

enum log_level {
	LOG_LEVEL_OFF = 0,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_TRACE,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

#define LOG_LINE_MAX 4096       /* bytes per line, '\n' included */
#define LOG_LINE_MIN 256        /* smallest buffer log_format_line accepts */
#define LOG_MODULE_MAX 63       /* bytes in a module name of a spec */
#define LOG_OVERRIDES_MAX 32    /* module overrides in a spec */
/* log_get_spec never needs more than this (NUL included). */
#define LOG_SPEC_MAX (8 + LOG_OVERRIDES_MAX * (LOG_MODULE_MAX + 8))
#define LOG_TRUNC_MARK "...[truncated]"

/*
 * Parses a level name ("error", "warn", "info", "debug", "trace", "off";
 * ASCII case-insensitive) into <*level>. Returns 0, or -1 (untouched).
 */
int log_level_parse(struct str name, int *level);

/* Lower-case name of <level> ("info"), or "?" for a value out of range. */
const char *log_level_name(int level);

/*
 * Replaces the level spec with <spec> (see the header comment). The spec is
 * validated completely first: on any error nothing changes, -1 is returned
 * and <err> (<errlen> bytes, may be NULL/0) receives a one-line description
 * in printable ASCII, safe to send back to an HTTP client. Returns 0 on
 * success.
 */
int log_set_spec(const char *spec, char *err, size_t errlen);
/* The same for a slice (an HTTP request body, say). */
int log_set_spec_str(struct str spec, char *err, size_t errlen);

/*
 * Writes the current spec in canonical form ("info,proxy=debug": default
 * level first, then overrides in the order given, lower-case levels) into
 * <out> as a C string. Returns 0, or -1 when <outlen> is too small (then
 * <out> holds a NUL-terminated prefix when outlen > 0). LOG_SPEC_MAX bytes
 * always suffice.
 */
int log_get_spec(char *out, size_t outlen);

/* Selects the output format by name, "text" or "json" (exactly). Returns 0,
 * or -1 and keeps the current format. */
int log_set_format(const char *name);
/* The current format, LOG_FORMAT_TEXT or LOG_FORMAT_JSON. */
int log_get_format(void);

/* Sends lines to <fd> from now on and returns the previous fd. The caller
 * keeps ownership of both. A negative fd discards every line. */
int log_set_fd(int fd);

/* Lines lost because a write failed, since the process started. */
uint64_t log_dropped(void);

/* Restores the defaults: spec "info", text format, fd 2. */
void log_reset(void);

/* private: the most verbose level any module has (see log_enabled). */
extern atomic_int log_max_level;
/* private: the slow part of log_enabled. */
int log_enabled_slow(int level, const char *module);

/*
 * 1 when a message at <level> from <module> (a dotted name, or NULL for "no
 * module": the default level applies) would be written, else 0.
 */
static inline int log_enabled(int level, const char *module)
{
	if (level > atomic_load_explicit(&log_max_level, memory_order_relaxed))
		return 0;
	return log_enabled_slow(level, module);
}

/*
 * Formats a message with printf-style <fmt> and writes it as one line
 * without checking log_enabled (the LOG_* macros check first). <level> out
 * of range is formatted as "?".
 */
void log_emit(int level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vemit(int level, const char *module, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/*
 * The pure formatter behind log_emit. Writes one line for <msg> (<msglen>
 * bytes, any bytes including NUL) into <out> in <format> (LOG_FORMAT_*; other
 * values mean text) with time <ts> (NULL: now; years outside 0000..9999 are
 * clamped). <module> is a C string or NULL.
 *
 * Returns the bytes written, the final '\n' included; the line is never
 * longer than <outlen> and holds no other '\n'. No NUL is written. Returns 0
 * (nothing written) when outlen < LOG_LINE_MIN.
 */
size_t log_format_line(char *out, size_t outlen, int format, int level,
                       const char *module, const struct timespec *ts,
                       const char *msg, size_t msglen);

/* Logs at a level when it is enabled; arguments are: module, fmt, args... */
#define LOG_AT(lvl, module, ...) do {                                        \
	const char *log_m_ = (module);                                      \
	if (log_enabled((lvl), log_m_))                                     \
		log_emit((lvl), log_m_, __VA_ARGS__);                       \
} while (0)

#define LOG_ERROR(module, ...) LOG_AT(LOG_LEVEL_ERROR, module, __VA_ARGS__)
#define LOG_WARN(module, ...)  LOG_AT(LOG_LEVEL_WARN, module, __VA_ARGS__)
#define LOG_INFO(module, ...)  LOG_AT(LOG_LEVEL_INFO, module, __VA_ARGS__)
#define LOG_DEBUG(module, ...) LOG_AT(LOG_LEVEL_DEBUG, module, __VA_ARGS__)
#define LOG_TRACE(module, ...) LOG_AT(LOG_LEVEL_TRACE, module, __VA_ARGS__)

#endif
