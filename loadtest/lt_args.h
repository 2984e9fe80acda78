/* Command lines of the loadtest tools (certval-load, the OpenSSL baseline):
 * one loop over argv and the number parsers their options share. Plain C,
 * no crypto.
 *
 * Conventions: parsers return true when the value is accepted and only then
 * write |*out|; lt_args_parse returns 0 or -1 with a message on stderr. */
#ifndef CERTVAL_LT_ARGS_H
#define CERTVAL_LT_ARGS_H

#include <stdbool.h>
#include <stddef.h>

/* What a tool's option callback made of one word of the command line. */
enum lt_arg {
    LT_ARG_BAD,        /* unknown option, missing or bad value */
    LT_ARG_FLAG,       /* an option without a value */
    LT_ARG_WITH_VALUE, /* "--name value": the value is consumed too */
};

/* lt_arg_fn looks at option |name| and the word after it, |val| (NULL at the
 * end of the command line), and applies it to the tool's options |ctx|. */
typedef enum lt_arg (*lt_arg_fn)(void *ctx, const char *name, const char *val);

/* lt_args_parse hands every option of |argv| to |fn| in order. On the first
 * bad one it prints "|tool|: bad option or value: NAME" and returns -1. */
int lt_args_parse(const char *tool, int argc, char **argv, lt_arg_fn fn, void *ctx);

/* A string option: "--name value" stores value in *dst. */
struct lt_str_opt {
    const char *name;
    const char **dst;
};

/* lt_arg_string looks |name| up in the |n| string options |opts|: when it
 * is one of them it stores |val| and returns true, with |*out_ok| false when
 * the value is missing; false when |name| is not a string option. */
bool lt_arg_string(const struct lt_str_opt *opts, size_t n, const char *name, const char *val,
                   bool *out_ok);

/* lt_parse_uint reads a whole decimal |s| in [lo, hi]. */
bool lt_parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out);

/* lt_parse_double reads a whole number |s| in [lo, hi] (never NaN). */
bool lt_parse_double(const char *s, double lo, double hi, double *out);

#endif
