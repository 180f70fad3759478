/*
 * log.h - structured logs: one JSON object per line on stderr.
 *
 * Every line has "ts" (UTC, RFC 3339 with milliseconds), "level", "svc" (the
 * program, set once by log_init) and "msg"; log_fields adds the members of a
 * cJSON object. Lines below the configured level are dropped. Safe to call
 * from any thread: each line is written with one write(2).
 */
#ifndef PODIUM_LIB_LOG_H
#define PODIUM_LIB_LOG_H

#include <cjson/cJSON.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_init(const char *service, enum log_level min);
/* "debug", "info", "warn", "error" -> level; -1 if none of those. */
int log_level_parse(const char *s);

/* printf-style message. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A message with extra fields; takes ownership of fields (may be NULL). */
void log_fields(enum log_level level, const char *msg, cJSON *fields);

#endif
