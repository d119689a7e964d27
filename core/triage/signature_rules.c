/*
 * The signature lists: one "LABEL FIELD REGEX" file split into the rule
 * sets of merge/rules.h. The engine matches "function" and "module"
 * fields; a "category" line becomes a "function" line of a set that is
 * matched against the frame's category instead. Each set gets the lines
 * of the text that belong to it and a comment line ("#") for each of the
 * others, so the engine's error messages keep the file's line numbers
 * (it skips empty lines without counting them).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge/rules.h"
#include "triage/signature.h"

extern const char ms_builtin_signature_rules[];

/* The sets: [sentinel?][category field?]. */
enum {
        SET_FRAMES,
        SET_CATEGORIES,
        SET_SENTINELS,
        SET_SENTINEL_CATEGORIES,
        N_SETS,
};

struct ms_signature_rules {
        struct ms_rules *sets[N_SETS];
};

struct ms_error *ms_signature_rules_create(struct ms_signature_rules **ret)
{
        struct ms_signature_rules *rules = calloc(1, sizeof(*rules));
        if (!rules)
                return &ms_error_no_memory;
        for (int i = 0; i < N_SETS; i++) {
                struct ms_error *err = ms_rules_create(&rules->sets[i]);
                if (err) {
                        ms_signature_rules_destroy(rules);
                        return err;
                }
        }
        *ret = rules;
        return NULL;
}

void ms_signature_rules_destroy(struct ms_signature_rules *rules)
{
        if (!rules)
                return;
        for (int i = 0; i < N_SETS; i++)
                ms_rules_destroy(rules->sets[i]);
        free(rules);
}

static const char *const labels[] = {"sentinel", "irrelevant", "prefix",
                                     "keep"};

static bool known_label(const char *s, size_t len)
{
        for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
                if (strlen(labels[i]) == len && memcmp(labels[i], s, len) == 0)
                        return true;
        }
        return false;
}

static bool token_is(const char *s, size_t len, const char *word)
{
        return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* The set a line goes to, with its field rewritten in place for category
 * lines ("category" and "function" have the same length); -1 for a blank
 * or comment line; -2 with *err for a bad line. */
static int classify_line(char *line, const char *origin, int line_no,
                         struct ms_error **err)
{
        const char *space = " \t\r";
        char *label = line + strspn(line, space);
        if (*label == '\0' || *label == '#')
                return -1;
        size_t label_len = strcspn(label, space);
        char *field = label + label_len;
        field += strspn(field, space);
        size_t field_len = strcspn(field, space);
        const char *regex = field + field_len;
        regex += strspn(regex, space);
        if (!field_len || !*regex) {
                *err = ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s:%d: expected 'LABEL FIELD REGEX'",
                                       origin, line_no);
                return -2;
        }
        if (!known_label(label, label_len)) {
                *err = ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s:%d: label must be sentinel, "
                                       "irrelevant, prefix or keep, not "
                                       "'%.*s'",
                                       origin, line_no, (int)label_len, label);
                return -2;
        }
        bool sentinel = token_is(label, label_len, "sentinel");
        if (token_is(field, field_len, "category")) {
                memcpy(field, "function", field_len);
                return sentinel ? SET_SENTINEL_CATEGORIES : SET_CATEGORIES;
        }
        if (!token_is(field, field_len, "function") &&
            !token_is(field, field_len, "module")) {
                *err = ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s:%d: field must be function, module "
                                       "or category, not '%.*s'",
                                       origin, line_no, (int)field_len, field);
                return -2;
        }
        return sentinel ? SET_SENTINELS : SET_FRAMES;
}

/* Split text into one text per set, each with as many lines as text. */
static struct ms_error *split_text(const char *text, const char *origin,
                                   char *out[N_SETS])
{
        size_t len = strlen(text);
        for (int i = 0; i < N_SETS; i++) {
                /* A line of n bytes becomes at most n + 1 bytes, an empty
                 * one 2. */
                out[i] = calloc(1, 2 * len + 3);
                if (!out[i])
                        return &ms_error_no_memory;
        }
        size_t out_len[N_SETS] = {0};
        int line_no = 0;
        for (const char *p = text; *p || p == text;) {
                size_t n = strcspn(p, "\n");
                line_no++;
                char *line = strndup(p, n);
                if (!line)
                        return &ms_error_no_memory;
                struct ms_error *err = NULL;
                int set = classify_line(line, origin, line_no, &err);
                for (int i = 0; i < N_SETS; i++) {
                        if (i == set) {
                                memcpy(out[i] + out_len[i], line, n);
                                out_len[i] += n;
                        } else {
                                out[i][out_len[i]++] = '#';
                        }
                        out[i][out_len[i]++] = '\n';
                }
                free(line);
                if (err)
                        return err;
                p += n;
                if (!*p)
                        break;
                p++;
        }
        return NULL;
}

struct ms_error *ms_signature_rules_add_text(struct ms_signature_rules *rules,
                                             const char *text,
                                             const char *origin, bool prepend)
{
        char *parts[N_SETS] = {0};
        struct ms_error *err = split_text(text, origin, parts);
        for (int i = 0; i < N_SETS && !err; i++)
                err = ms_rules_add_text(rules->sets[i], parts[i], origin,
                                        prepend);
        for (int i = 0; i < N_SETS; i++)
                free(parts[i]);
        return err;
}

/* A rules file read whole; NULL in *text when optional and missing. */
static struct ms_error *read_rules_file(const char *path, bool optional,
                                        char **text)
{
        *text = NULL;
        FILE *f = fopen(path, "r");
        if (!f) {
                if (optional && errno == ENOENT)
                        return NULL;
                return ms_error_from_errno(errno, "cannot open rules %s", path);
        }
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (!mem) {
                fclose(f);
                return &ms_error_no_memory;
        }
        char chunk[8192];
        size_t n;
        /* A list of patterns is small; anything bigger is not one. */
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && len < (4u << 20))
                fwrite(chunk, 1, n, mem);
        bool failed = ferror(f);
        fclose(f);
        if (fclose(mem) != 0 || !buf) {
                free(buf);
                return &ms_error_no_memory;
        }
        if (failed || len >= (4u << 20)) {
                free(buf);
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "cannot read rules %s (unreadable or "
                                       "larger than 4 MiB)",
                                       path);
        }
        *text = buf;
        return NULL;
}

static struct ms_error *add_file(struct ms_signature_rules *rules,
                                 const char *path, bool optional)
{
        char *text;
        struct ms_error *err = read_rules_file(path, optional, &text);
        if (!err && text)
                err = ms_signature_rules_add_text(rules, text, path, true);
        free(text);
        return err;
}

static struct ms_error *add_user_files(struct ms_signature_rules *rules)
{
        struct ms_error *err = NULL;
        const char *home = getenv("HOME");
        if (home && *home) {
                char *path = NULL;
                if (asprintf(&path, "%s/.config/mixstack/signature-rules.conf",
                             home) < 0)
                        return &ms_error_no_memory;
                err = add_file(rules, path, true);
                free(path);
        }
        /* Added last with prepend: tried before everything else. */
        const char *user = getenv("MIXSTACK_SIGNATURE_RULES");
        if (!err && user && *user)
                err = add_file(rules, user, false);
        return err;
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static struct ms_signature_rules *default_rules;
static struct ms_error *default_warning;

static struct ms_signature_rules *builtin_rules(void)
{
        struct ms_signature_rules *rules;
        if (ms_signature_rules_create(&rules))
                return NULL;
        if (ms_signature_rules_add_text(rules, ms_builtin_signature_rules,
                                        "signature-rules.conf", false)) {
                ms_signature_rules_destroy(rules);
                return NULL;
        }
        return rules;
}

static void load_default(void)
{
        struct ms_signature_rules *rules = builtin_rules();
        if (!rules)
                return;
        struct ms_error *err = add_user_files(rules);
        if (err) {
                /* A bad user file must not cost the built-in lists. */
                default_warning = err;
                ms_signature_rules_destroy(rules);
                rules = builtin_rules();
        }
        default_rules = rules;
}

const struct ms_signature_rules *ms_signature_rules_default(
        const struct ms_error **warning)
{
        pthread_once(&default_once, load_default);
        if (warning)
                *warning = default_warning;
        return default_rules;
}

/* What the lists match a frame against: for Python frames the signature
 * text and the source path, for native frames the function and module. */
static void subjects(const struct ms_frame *frame, const char *text,
                     const char **function, const char **module)
{
        if (frame->kind == MS_FRAME_PYTHON) {
                *function = text;
                *module = frame->file;
        } else {
                /* A native frame without a name is its module's name as
                 * the signature shows it ("libc.so"). */
                *function = frame->function ? frame->function : text;
                *module = frame->module;
        }
}

static const char *match_label(const struct ms_signature_rules *rules, int set,
                               int category_set, const struct ms_frame *frame,
                               const char *text)
{
        const char *function, *module;
        subjects(frame, text, &function, &module);
        const char *label = ms_rules_match(rules->sets[set], function, module);
        if (!label && frame->category)
                label = ms_rules_match(rules->sets[category_set],
                                       frame->category, NULL);
        return label;
}

enum ms_signature_label ms_signature_label(
        const struct ms_signature_rules *rules, const struct ms_frame *frame,
        const char *text)
{
        const char *label =
                match_label(rules, SET_FRAMES, SET_CATEGORIES, frame, text);
        if (label && strcmp(label, "irrelevant") == 0)
                return MS_SIGNATURE_IRRELEVANT;
        if (label && strcmp(label, "prefix") == 0)
                return MS_SIGNATURE_PREFIX;
        return MS_SIGNATURE_FRAME;
}

bool ms_signature_is_sentinel(const struct ms_signature_rules *rules,
                              const struct ms_frame *frame, const char *text)
{
        return match_label(rules, SET_SENTINELS, SET_SENTINEL_CATEGORIES, frame,
                           text) != NULL;
}
