/* RFC 6125 host name checks beyond BoringSSL's X509_check_host: a
 * wildcard must not stand for a label directly under a public suffix
 * ("*.co.uk"). BoringSSL already takes the SAN only (with
 * X509_CHECK_FLAG_NEVER_CHECK_SUBJECT), matches case-insensitively, allows
 * the wildcard only as the whole leftmost label and refuses "*.com".
 *
 * The public suffixes come from Debian's `publicsuffix` package
 * (/usr/share/publicsuffix/public_suffix_list.dat), read once. Without that
 * file, only BoringSSL's two-label rule applies (docs/conformance.md). */
#include "validator_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#define PSL_PATH "/usr/share/publicsuffix/public_suffix_list.dat"
#define PSL_MAX_RULES 20000 /* the list has about 10,000 */

static char **psl_rules; /* sorted, lower-case; "*.x" and "!x" kept as written */
static size_t psl_n;
static pthread_once_t psl_once = PTHREAD_ONCE_INIT;

static int psl_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* psl_load: the rules of the ICANN and private sections, one per line,
 * comments and blank lines skipped. Runs once; a missing file leaves the
 * list empty. Never freed: read-only for the life of the process. */
static void psl_load(void)
{
    FILE *f = fopen(PSL_PATH, "r");
    char line[256];

    if (f == NULL)
        return;
    psl_rules = calloc(PSL_MAX_RULES, sizeof(*psl_rules));
    while (psl_rules != NULL && psl_n < PSL_MAX_RULES && fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, " \t\r\n");
        if (len == 0 || line[0] == '/')
            continue;
        line[len] = '\0';
        for (size_t i = 0; i < len; i++)
            if (line[i] >= 'A' && line[i] <= 'Z')
                line[i] = (char)(line[i] - 'A' + 'a');
        psl_rules[psl_n] = strdup(line);
        if (psl_rules[psl_n] != NULL)
            psl_n++;
    }
    fclose(f);
    qsort(psl_rules, psl_n, sizeof(*psl_rules), psl_cmp);
}

static bool psl_has(const char *rule)
{
    return psl_n > 0 && bsearch(&rule, psl_rules, psl_n, sizeof(*psl_rules), psl_cmp) != NULL;
}

bool hostname_is_public_suffix(const char *domain, size_t len)
{
    char d[256], rule[258];
    const char *dot;

    pthread_once(&psl_once, psl_load);
    if (len == 0 || len >= sizeof(d))
        return true;
    for (size_t i = 0; i < len; i++)
        d[i] = (domain[i] >= 'A' && domain[i] <= 'Z') ? (char)(domain[i] - 'A' + 'a') : domain[i];
    d[len] = '\0';
    if (strchr(d, '.') == NULL)
        return true; /* the list's implicit "*" rule: every TLD */
    snprintf(rule, sizeof(rule), "!%s", d);
    if (psl_has(rule))
        return false;
    if (psl_has(d))
        return true;
    dot = strchr(d, '.');
    snprintf(rule, sizeof(rule), "*%s", dot);
    return psl_has(rule);
}

const char *hostname_check_wildcards(X509 *leaf, const struct cert_exts *exts, const char *host)
{
    GENERAL_NAMES *own = exts == NULL ? cert_ext_d2i(leaf, NID_subject_alt_name) : NULL;
    const GENERAL_NAMES *gens = exts != NULL ? exts->san : own;
    size_t hlen = strlen(host);
    const char *hdot = strchr(host, '.');
    bool ok = false, over_suffix = false;

    for (size_t i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && !ok; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *n;
        size_t nlen;

        if (g->type != GEN_DNS)
            continue;
        n = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        nlen = (size_t)ASN1_STRING_length(g->d.dNSName);
        if (nlen == hlen && strncasecmp(n, host, hlen) == 0) {
            ok = true; /* an exact name needs no suffix check */
        } else if (nlen > 2 && n[0] == '*' && n[1] == '.' && hdot != NULL &&
                   strlen(hdot + 1) == nlen - 2 && strncasecmp(hdot + 1, n + 2, nlen - 2) == 0) {
            if (hostname_is_public_suffix(n + 2, nlen - 2))
                over_suffix = true;
            else
                ok = true;
        }
    }
    GENERAL_NAMES_free(own);
    if (ok)
        return NULL;
    return over_suffix ? "the only matching name is a wildcard over a public suffix"
                       : "no subjectAltName matches the host name";
}
