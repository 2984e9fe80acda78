/* certval's own nameConstraints checks (name_constraints.c, RFC 5280
 * 4.2.1.10) for the DNS, e-mail and IP forms, run after BoringSSL's. Part
 * of certval_core's path verification (pathval.h); the fuzz target
 * fuzz_name_constraints drives nc_check_name directly.
 *
 * Conventions: a check answers an enum verdict_reason (VERDICT_REASON_OK
 * when it passes) or the violated constraint's description (NULL when it
 * passes); predicates return bool. Pure functions, thread-safe. */
#ifndef CERTVAL_NAME_CONSTRAINTS_H
#define CERTVAL_NAME_CONSTRAINTS_H

#include <stdbool.h>

#include <openssl/base.h>
#include <openssl/x509v3.h>

#include "pathval.h"
#include "validator.h"

/* ---- name_constraints.c ---- */

/* nc_is_own_form: certval checks this GEN_* form itself (DNS, e-mail, IP). */
bool nc_is_own_form(int type);

/* nc_check_name applies the subtrees of |nc| to |name| when it is one of
 * certval's own forms (RFC 5280 4.2.1.10): NULL when it passes, else why
 * not ("excluded subtree violation", ...). Total on any input: the fuzz
 * target fuzz_name_constraints drives it. */
const char *nc_check_name(const NAME_CONSTRAINTS *nc, const GENERAL_NAME *name);

/* nc_after_first_ip_only_own_forms: every SAN of |x| from its first IP
 * address on is a DNS, e-mail or IP name. BoringSSL stops at the first IP
 * SAN under an iPAddress constraint; its error may be excused only then. */
bool nc_after_first_ip_only_own_forms(X509 *x);

/* nc_check_path applies every CA's nameConstraints in |chain| to the DNS,
 * e-mail and IP SANs of the certificates below it (self-issued CAs
 * exempt), taking the extensions |px| (may be NULL) has decoded already.
 * Returns VERDICT_REASON_OK or VERDICT_REASON_NAME_CONSTRAINTS with |f|. */
enum verdict_reason nc_check_path(struct pathval_failure *f, const STACK_OF(X509) *chain,
                                  const struct pathval_exts *px);

#endif
