/* log.c - see log.h. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_service = "podium";
static enum log_level log_min = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, enum log_level min)
{
    log_service = service;
    log_min = min;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

static void log_write(cJSON *line)
{
    char *text = cJSON_PrintUnformatted(line);
    if (text == NULL) return;
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the NUL; we write n+1 bytes and free */
    const char *p = text;
    size_t left = n + 1;
    while (left > 0) {
        ssize_t w = write(STDERR_FILENO, p, left);
        if (w <= 0) break;
        p += w;
        left -= (size_t)w;
    }
    free(text);
}

void log_fields(enum log_level level, const char *msg, cJSON *fields)
{
    if (level < log_min) {
        cJSON_Delete(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));

    cJSON *line = cJSON_CreateObject();
    if (line == NULL) {
        cJSON_Delete(fields);
        return;
    }
    cJSON_AddStringToObject(line, "ts", stamp);
    cJSON_AddStringToObject(line, "level", level_names[level]);
    cJSON_AddStringToObject(line, "svc", log_service);
    cJSON_AddStringToObject(line, "msg", msg);
    if (fields != NULL) {
        cJSON *item = fields->child;
        while (item != NULL) {
            cJSON *next = item->next;
            cJSON_DetachItemViaPointer(fields, item);
            cJSON_AddItemToObject(line, item->string, item);
            item = next;
        }
        cJSON_Delete(fields);
    }
    log_write(line);
    cJSON_Delete(line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_min) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fields(level, msg, NULL);
}
