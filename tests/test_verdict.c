/* Verdict names, fail-closed initialisation, and the promise of
 * verdict-t.h: its enums have the protobuf enums' values, so the server can
 * copy them across. */
#include <criterion/criterion.h>

#include <string.h>

#include "certval/v1/certval.pb-c.h"
#include "verdict.h"

Test(verdict, init_fails_closed)
{
    struct verdict v;

    memset(&v, 0xff, sizeof(v));
    verdict_init(&v, 42);
    cr_assert_eq(v.id, 42);
    cr_assert_eq(v.decision, DECISION_DENY);
    cr_assert_eq(v.reason, VERDICT_REASON_INTERNAL_ERROR);
    cr_assert_str_eq(v.detail, "");
}

Test(verdict, deny_formats_detail)
{
    struct verdict v;

    verdict_init(&v, 1);
    verdict_deny(&v, VERDICT_REASON_EXPIRED, "leaf expired at %d", 7);
    cr_assert_eq(v.reason, VERDICT_REASON_EXPIRED);
    cr_assert_str_eq(v.detail, "leaf expired at 7");
}

Test(verdict, reason_enum_matches_proto)
{
    const ProtobufCEnumDescriptor *d = &certval__v1__reason__descriptor;

    /* Every protobuf value has the same number and name here, and back. */
    cr_assert_eq(d->n_values, VERDICT_REASON_MAX + 1);
    for (unsigned i = 0; i < d->n_values; i++) {
        const ProtobufCEnumValue *ev = &d->values[i];
        const char *name = verdict_reason_name((enum verdict_reason)ev->value);

        cr_assert_str_eq(ev->name + strlen("REASON_"), name, "value %d", ev->value);
    }
    cr_assert_str_eq(verdict_reason_name((enum verdict_reason)999), "UNKNOWN");
}

Test(verdict, decision_and_kind_match_proto)
{
    cr_assert_eq(DECISION_ALLOW, CERTVAL__V1__DECISION__DECISION_ALLOW);
    cr_assert_eq(DECISION_REQUIRE_PASSWORD, CERTVAL__V1__DECISION__DECISION_REQUIRE_PASSWORD);
    cr_assert_eq(DECISION_DENY, CERTVAL__V1__DECISION__DECISION_DENY);
    cr_assert_eq(CERT_KIND_TENANT, CERTVAL__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_TENANT);
    cr_assert_eq(CERT_KIND_DEVICE, CERTVAL__V1__CERTIFICATE_KIND__CERTIFICATE_KIND_DEVICE);
    cr_assert_str_eq(verdict_decision_name(DECISION_REQUIRE_PASSWORD), "REQUIRE_PASSWORD");
    cr_assert_str_eq(cert_kind_name(CERT_KIND_DEVICE), "device");
}
