/* The one error type of libmixstack. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixstack/mixstack.h"

struct ms_error ms_error_no_memory = {
        .code = MS_ERROR_NO_MEMORY,
        .message = "out of memory",
        .is_static = true,
};

static struct ms_error *error_vcreate(enum ms_error_code code, int errnum,
                                      const char *suffix, const char *fmt,
                                      va_list ap)
{
        struct ms_error *err = malloc(sizeof(*err));
        if (!err)
                return &ms_error_no_memory;
        char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0) {
                free(err);
                return &ms_error_no_memory;
        }
        if (suffix) {
                char *full = NULL;
                if (asprintf(&full, "%s: %s", msg, suffix) < 0) {
                        free(msg);
                        free(err);
                        return &ms_error_no_memory;
                }
                free(msg);
                msg = full;
        }
        /* Messages are one line: fold newlines that came from the target. */
        for (char *p = msg; *p; p++) {
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        }
        err->code = code;
        err->errnum = errnum;
        err->message = msg;
        err->is_static = false;
        return err;
}

struct ms_error *ms_error_create(enum ms_error_code code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        struct ms_error *err = error_vcreate(code, 0, NULL, fmt, ap);
        va_end(ap);
        return err;
}

struct ms_error *ms_error_from_errno(int errnum, const char *fmt, ...)
{
        enum ms_error_code code = MS_ERROR_OS;
        if (errnum == EPERM || errnum == EACCES)
                code = MS_ERROR_PERMISSION;
        else if (errnum == ENOENT || errnum == ESRCH)
                code = MS_ERROR_NOT_FOUND;
        else if (errnum == ENOMEM)
                return &ms_error_no_memory;
        va_list ap;
        va_start(ap, fmt);
        struct ms_error *err =
                error_vcreate(code, errnum, strerror(errnum), fmt, ap);
        va_end(ap);
        return err;
}

struct ms_error *ms_error_wrap(struct ms_error *err, const char *fmt, ...)
{
        if (!err || err->is_static)
                return err;
        char *prefix = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&prefix, fmt, ap);
        va_end(ap);
        if (n < 0)
                return err;
        char *full = NULL;
        if (asprintf(&full, "%s: %s", prefix, err->message) >= 0) {
                free(err->message);
                err->message = full;
        }
        free(prefix);
        return err;
}

void ms_error_destroy(struct ms_error *err)
{
        if (!err || err->is_static)
                return;
        free(err->message);
        free(err);
}

enum ms_error_code ms_error_code(const struct ms_error *err)
{
        return err->code;
}

int ms_error_errnum(const struct ms_error *err)
{
        return err->errnum;
}

const char *ms_error_message(const struct ms_error *err)
{
        return err->message;
}
