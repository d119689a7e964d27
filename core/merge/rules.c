#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/util.h"
#include "merge/rules.h"
#include "symbols/symbols.h"

/* A rules file larger than this is refused: it is not a rules file. */
#define MAX_RULES_TEXT (4u << 20)

extern const char ms_builtin_frame_rules[];

struct ms_rule {
        char *label;
        enum ms_rule_field field;
        pcre2_code *code;
};

/* Results of ms_rules_match_file, by subject: a report asks about the
 * same few hundred functions for every one of its frames (hundreds of
 * thousands in a big process), and matching runs every regex in turn. */
struct memo_entry {
        uint64_t hash;
        /* The three subjects, NUL-separated (a NULL one is "\1"), or NULL
         * for a free slot. */
        char *key;
        size_t key_len;
        const char *label;
};

/* Entries kept at most; the memo starts over when full. */
#define MEMO_MAX 32768

struct ms_rules {
        struct ms_rule *items;
        size_t n;
        size_t capacity;
        pcre2_match_data *match_data;
        /* Matching is serialised: match_data and the memo are shared. */
        pthread_mutex_t lock;
        struct memo_entry *memo;
        size_t memo_slots; /* a power of two, > 2 * memo_n */
        size_t memo_n;
};

static void memo_clear(struct ms_rules *rules)
{
        for (size_t i = 0; i < rules->memo_slots; i++) {
                free(rules->memo[i].key);
                rules->memo[i].key = NULL;
        }
        rules->memo_n = 0;
}

struct ms_error *ms_rules_create(struct ms_rules **ret)
{
        struct ms_rules *rules = calloc(1, sizeof(*rules));
        if (!rules)
                return &ms_error_no_memory;
        rules->match_data = pcre2_match_data_create(4, NULL);
        if (!rules->match_data) {
                free(rules);
                return &ms_error_no_memory;
        }
        pthread_mutex_init(&rules->lock, NULL);
        *ret = rules;
        return NULL;
}

void ms_rules_destroy(struct ms_rules *rules)
{
        if (!rules)
                return;
        for (size_t i = 0; i < rules->n; i++) {
                free(rules->items[i].label);
                pcre2_code_free(rules->items[i].code);
        }
        free(rules->items);
        pcre2_match_data_free(rules->match_data);
        memo_clear(rules);
        free(rules->memo);
        pthread_mutex_destroy(&rules->lock);
        free(rules);
}

static struct ms_error *compile_rule(const char *label, const char *field,
                                     const char *regex, const char *origin,
                                     int line_no, struct ms_rule *rule)
{
        if (strcmp(field, "function") == 0)
                rule->field = MS_RULE_FUNCTION;
        else if (strcmp(field, "module") == 0)
                rule->field = MS_RULE_MODULE;
        else if (strcmp(field, "file") == 0)
                rule->field = MS_RULE_FILE;
        else
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s:%d: field must be 'function', "
                                       "'module' or 'file', not '%s'",
                                       origin, line_no, field);
        int code;
        PCRE2_SIZE offset;
        rule->code = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code,
                                   &offset, NULL);
        if (!rule->code) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(code, msg, sizeof(msg));
                return ms_error_create(MS_ERROR_BAD_INPUT,
                                       "%s:%d: bad regex at offset %zu: %s",
                                       origin, line_no, (size_t)offset,
                                       (char *)msg);
        }
        /* JIT is an optimisation; matching works without it. */
        pcre2_jit_compile(rule->code, PCRE2_JIT_COMPLETE);
        rule->label = strdup(label);
        if (!rule->label) {
                pcre2_code_free(rule->code);
                return &ms_error_no_memory;
        }
        return NULL;
}

static struct ms_error *insert_rule(struct ms_rules *rules,
                                    const struct ms_rule *rule, size_t at)
{
        if (!ms_grow((void **)&rules->items, &rules->capacity, rules->n,
                     sizeof(*rules->items)))
                return &ms_error_no_memory;
        memmove(&rules->items[at + 1], &rules->items[at],
                (rules->n - at) * sizeof(*rules->items));
        rules->items[at] = *rule;
        rules->n++;
        return NULL;
}

/* Split one line into label, field and regex (the rest of the line). */
static bool split_line(char *line, char **label, char **field, char **regex)
{
        const char *space = " \t";
        *label = line + strspn(line, space);
        if (**label == '\0' || **label == '#')
                return false;
        char *p = *label + strcspn(*label, space);
        if (*p == '\0')
                return false;
        *p++ = '\0';
        *field = p + strspn(p, space);
        p = *field + strcspn(*field, space);
        if (*p == '\0')
                return false;
        *p++ = '\0';
        *regex = p + strspn(p, space);
        /* Trailing white space is not part of the pattern. */
        size_t len = strlen(*regex);
        while (len && strchr(" \t\r", (*regex)[len - 1]))
                (*regex)[--len] = '\0';
        return len > 0;
}

struct ms_error *ms_rules_add_text(struct ms_rules *rules, const char *text,
                                   const char *origin, bool prepend)
{
        char *copy = strdup(text);
        if (!copy)
                return &ms_error_no_memory;
        struct ms_error *err = NULL;
        size_t at = prepend ? 0 : rules->n;
        int line_no = 0;
        /* Every line counts, blank ones too, so that messages name the
         * line of the file (strtok would skip the empty ones). */
        for (char *line = copy, *next; line && !err; line = next) {
                line_no++;
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *label, *field, *regex;
                /* White space only (\r of CRLF too) or a comment. */
                char *start = line + strspn(line, " \t\r");
                if (*start == '\0' || *start == '#')
                        continue;
                if (!split_line(line, &label, &field, &regex)) {
                        err = ms_error_create(MS_ERROR_BAD_INPUT,
                                              "%s:%d: expected 'CATEGORY "
                                              "FIELD REGEX'",
                                              origin, line_no);
                        break;
                }
                struct ms_rule rule;
                err = compile_rule(label, field, regex, origin, line_no, &rule);
                if (!err) {
                        memo_clear(rules);
                        err = insert_rule(rules, &rule, at++);
                        if (err) {
                                free(rule.label);
                                pcre2_code_free(rule.code);
                        }
                }
        }
        free(copy);
        return err;
}

struct ms_error *ms_rules_add_file(struct ms_rules *rules, const char *path,
                                   bool optional, bool prepend)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                if (optional && errno == ENOENT)
                        return NULL;
                return ms_error_from_errno(errno, "cannot open rules %s", path);
        }
        char *text = malloc(MAX_RULES_TEXT + 1);
        if (!text) {
                fclose(f);
                return &ms_error_no_memory;
        }
        size_t len = fread(text, 1, MAX_RULES_TEXT + 1, f);
        bool failed = ferror(f);
        fclose(f);
        struct ms_error *err = NULL;
        if (failed)
                err = ms_error_create(MS_ERROR_OS, "cannot read rules %s",
                                      path);
        else if (len > MAX_RULES_TEXT)
                err = ms_error_create(MS_ERROR_BAD_INPUT,
                                      "rules file %s is too large", path);
        if (!err) {
                text[len] = '\0';
                err = ms_rules_add_text(rules, text, path, prepend);
        }
        free(text);
        return err;
}

static bool rule_matches(const struct ms_rules *rules,
                         const struct ms_rule *rule, const char *subject,
                         size_t len)
{
        int rc = pcre2_match(rule->code, (PCRE2_SPTR)subject, len, 0, 0,
                             rules->match_data, NULL);
        return rc >= 0;
}

static const char *match_uncached(const struct ms_rules *rules,
                                  const char *function, size_t function_len,
                                  const char *module, const char *file)
{
        for (size_t i = 0; i < rules->n; i++) {
                const struct ms_rule *rule = &rules->items[i];
                const char *subject = NULL;
                size_t len = 0;
                switch (rule->field) {
                case MS_RULE_FUNCTION:
                        subject = function;
                        len = function_len;
                        break;
                case MS_RULE_MODULE:
                        subject = module;
                        len = module ? strlen(module) : 0;
                        break;
                case MS_RULE_FILE:
                        subject = file;
                        len = file ? strlen(file) : 0;
                        break;
                }
                if (subject && rule_matches(rules, rule, subject, len))
                        return rule->label;
        }
        return NULL;
}

/* Append a subject to the memo key: its bytes then NUL, or "\1" + NUL for
 * NULL (no subject string contains a NUL, so keys cannot collide). */
static void key_append(char *key, size_t *len, const char *subject,
                       size_t subject_len)
{
        if (subject) {
                memcpy(key + *len, subject, subject_len);
                *len += subject_len;
        } else {
                key[(*len)++] = '\1';
        }
        key[(*len)++] = '\0';
}

static uint64_t hash_bytes(const char *p, size_t n)
{
        /* Eight bytes at a time: keys are long (paths, Rust names). */
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
        for (; n >= 8; p += 8, n -= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                h = (h ^ w) * 0xff51afd7ed558ccdULL;
                h ^= h >> 32;
        }
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 29;
        return h;
}

static struct memo_entry *memo_slot(struct memo_entry *slots, size_t n_slots,
                                    uint64_t hash, const char *key,
                                    size_t key_len)
{
        size_t mask = n_slots - 1;
        for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
                struct memo_entry *e = &slots[i];
                if (!e->key || (e->hash == hash && e->key_len == key_len &&
                                memcmp(e->key, key, key_len) == 0))
                        return e;
        }
}

static bool memo_grow(struct ms_rules *rules)
{
        if (rules->memo_n >= MEMO_MAX)
                memo_clear(rules);
        if (2 * (rules->memo_n + 1) <= rules->memo_slots)
                return true;
        size_t n_slots = rules->memo_slots ? rules->memo_slots * 2 : 256;
        struct memo_entry *slots = calloc(n_slots, sizeof(*slots));
        if (!slots)
                return false;
        for (size_t i = 0; i < rules->memo_slots; i++) {
                struct memo_entry *e = &rules->memo[i];
                if (e->key)
                        *memo_slot(slots, n_slots, e->hash, e->key,
                                   e->key_len) = *e;
        }
        free(rules->memo);
        rules->memo = slots;
        rules->memo_slots = n_slots;
        return true;
}

const char *ms_rules_match_file(const struct ms_rules *const_rules,
                                const char *function, const char *module,
                                const char *file)
{
        /* The memo and match data change; the rules themselves do not. */
        struct ms_rules *rules = (struct ms_rules *)const_rules;
        size_t function_len = function ? ms_symbol_base_length(function) : 0;
        size_t module_len = module ? strlen(module) : 0;
        size_t file_len = file ? strlen(file) : 0;
        size_t key_len = 0, key_size = function_len + module_len + file_len + 6;
        /* On the stack when it fits; copied to the heap when memoised. */
        char stack_key[512];
        char *key =
                key_size <= sizeof(stack_key) ? stack_key : malloc(key_size);
        pthread_mutex_lock(&rules->lock);
        if (!key) {
                /* No memo without memory; the answer is the same. */
                const char *label = match_uncached(rules, function,
                                                   function_len, module, file);
                pthread_mutex_unlock(&rules->lock);
                return label;
        }
        key_append(key, &key_len, function, function_len);
        key_append(key, &key_len, module, module_len);
        key_append(key, &key_len, file, file_len);
        uint64_t hash = hash_bytes(key, key_len);
        struct memo_entry *e =
                rules->memo_slots ? memo_slot(rules->memo, rules->memo_slots,
                                              hash, key, key_len)
                                  : NULL;
        const char *label;
        if (e && e->key) {
                label = e->label;
        } else {
                label = match_uncached(rules, function, function_len, module,
                                       file);
                char *copy = key;
                if (key == stack_key) {
                        copy = malloc(key_len);
                        if (copy)
                                memcpy(copy, key, key_len);
                }
                if (copy && memo_grow(rules)) {
                        e = memo_slot(rules->memo, rules->memo_slots, hash,
                                      copy, key_len);
                        *e = (struct memo_entry){.hash = hash,
                                                 .key = copy,
                                                 .key_len = key_len,
                                                 .label = label};
                        rules->memo_n++;
                        if (key != stack_key)
                                key = NULL; /* now the memo's */
                } else if (copy != key) {
                        free(copy);
                }
        }
        pthread_mutex_unlock(&rules->lock);
        if (key != stack_key)
                free(key);
        return label;
}

const char *ms_rules_match(const struct ms_rules *rules, const char *function,
                           const char *module)
{
        return ms_rules_match_file(rules, function, module, NULL);
}

/* The process-wide rule set, loaded on first use. */
static pthread_once_t frame_rules_once = PTHREAD_ONCE_INIT;
static struct ms_rules *frame_rules;
static struct ms_error *frame_rules_error;

static void load_frame_rules(void)
{
        struct ms_rules *rules;
        struct ms_error *err = ms_rules_create(&rules);
        if (err) {
                frame_rules_error = err;
                return;
        }
        err = ms_rules_add_text(rules, ms_builtin_frame_rules,
                                "frame-rules.conf", false);
        const char *home = getenv("HOME");
        if (!err && home) {
                char *path = NULL;
                if (asprintf(&path, "%s/.config/mixstack/frame-rules.conf",
                             home) >= 0) {
                        err = ms_rules_add_file(rules, path, true, true);
                        free(path);
                }
        }
        /* $MIXSTACK_RULES is tried before everything else. */
        const char *user = getenv("MIXSTACK_RULES");
        if (!err && user && *user)
                err = ms_rules_add_file(rules, user, false, true);
        if (err) {
                /* A bad user file must not cost the built-in rules. */
                frame_rules_error = err;
                ms_rules_destroy(rules);
                if (ms_rules_create(&rules) ||
                    ms_rules_add_text(rules, ms_builtin_frame_rules,
                                      "frame-rules.conf", false))
                        return;
        }
        frame_rules = rules;
}

const struct ms_rules *ms_frame_rules(struct ms_error **error)
{
        pthread_once(&frame_rules_once, load_frame_rules);
        if (error)
                *error = frame_rules_error;
        return frame_rules;
}

const char *ms_rules_frame_category(const struct ms_rules *rules,
                                    const struct ms_frame *frame)
{
        if (frame->kind == MS_FRAME_PYTHON)
                return "python";
        const char *label =
                rules ? ms_rules_match_file(rules, frame->function,
                                            frame->module, frame->file)
                      : NULL;
        if (label)
                return label;
        return frame->language == MS_LANGUAGE_RUST ? "rust" : "native";
}
