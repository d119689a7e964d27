/*
 * Ordered PCRE2 rules that label frames: "CATEGORY FIELD REGEX" lines (see
 * data/frame-rules.conf). Frame classification uses them, and so can any
 * other list of labelled patterns (crash-signature lists).
 */
#ifndef MIXSTACK_MERGE_RULES_H
#define MIXSTACK_MERGE_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "mixstack/mixstack.h"
#include "report/model.h"

struct ms_rules;

enum ms_rule_field {
        MS_RULE_FUNCTION,
        MS_RULE_MODULE,
        MS_RULE_FILE,
};

struct ms_error *ms_rules_create(struct ms_rules **ret);
void ms_rules_destroy(struct ms_rules *rules);

/* Add the rules in text (origin names it in error messages). Lines added
 * later are tried after those added before, unless prepend is set. */
struct ms_error *ms_rules_add_text(struct ms_rules *rules, const char *text,
                                   const char *origin, bool prepend);
/* Add the rules of a file; a missing file is not an error when optional. */
struct ms_error *ms_rules_add_file(struct ms_rules *rules, const char *path,
                                   bool optional, bool prepend);

/* The label of the first rule matching function (without its clone
 * suffixes) or module, or NULL. The string lives as long as rules. */
const char *ms_rules_match(const struct ms_rules *rules, const char *function,
                           const char *module);
/* The same with the source file too (rules on the "file" field). */
const char *ms_rules_match_file(const struct ms_rules *rules,
                                const char *function, const char *module,
                                const char *file);

/* The process-wide frame classification rules: the built-in file, with
 * the user's ($MIXSTACK_RULES, then ~/.config/mixstack/frame-rules.conf)
 * tried first. Loaded once; NULL with a warning in *error on failure. */
const struct ms_rules *ms_frame_rules(struct ms_error **error);

/* The category of a frame: the first matching rule, else "python" for
 * Python frames, "rust" for Rust code and "native" for the rest. */
const char *ms_rules_frame_category(const struct ms_rules *rules,
                                    const struct ms_frame *frame);

#endif
