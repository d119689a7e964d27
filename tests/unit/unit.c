#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

int unit_passed, unit_failed;

int unit_finish(void)
{
        printf("%d passed, %d failed\n", unit_passed, unit_failed);
        return unit_failed ? 1 : 0;
}

void unit_skip(const char *why)
{
        printf("skipped: %s\n", why);
        exit(77);
}

char *unit_sample_sysroot(const char *dir)
{
        char path[4096], text[8192];
        snprintf(path, sizeof(path), "%s/run.json", dir);
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = 0;
        /* run.json is written by the harness: "sysroot": "/path" */
        const char *key = strstr(text, "\"sysroot\": \"");
        if (!key)
                return NULL;
        const char *start = key + strlen("\"sysroot\": \"");
        const char *end = strchr(start, '"');
        return end ? strndup(start, (size_t)(end - start)) : NULL;
}
