#ifndef NET_LOG_H
#define NET_LOG_H
/* Line-oriented logging to stderr. Never called on the per-message path. */
enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set once at start-up, before threads start. */
void log_set_level(enum log_level lvl);
/* True when messages at lvl are printed. */
int log_enabled(enum log_level lvl);
/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
