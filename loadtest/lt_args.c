/* The loadtest tools' command-line loop and number parsers (lt_args.h). */
#include "lt_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lt_args_parse(const char *tool, int argc, char **argv, lt_arg_fn fn, void *ctx)
{
    for (int i = 1; i < argc; i++) {
        enum lt_arg a = fn(ctx, argv[i], i + 1 < argc ? argv[i + 1] : NULL);

        if (a == LT_ARG_BAD) {
            fprintf(stderr, "%s: bad option or value: %s\n", tool, argv[i]);
            return -1;
        }
        if (a == LT_ARG_WITH_VALUE)
            i++;
    }
    return 0;
}

bool lt_arg_string(const struct lt_str_opt *opts, size_t n, const char *name, const char *val,
                   bool *out_ok)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, opts[i].name) == 0) {
            *opts[i].dst = val;
            *out_ok = val != NULL;
            return true;
        }
    }
    *out_ok = false;
    return false;
}

bool lt_parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

bool lt_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}
