/* Test support: the fixed clock of the unit tests. Certificates are
 * generated around TS_NOW and verdicts asked at TS_NOW, so a test gives the
 * same answer on any day it runs. PKITS has its own instant (PKITS_AT in
 * pkits_manifest.h). */
#ifndef CERTVAL_TEST_CLOCK_H
#define CERTVAL_TEST_CLOCK_H

#include <stdint.h>

#define TS_NOW ((int64_t)1795305600) /* 2026-11-22T00:00:00Z */
#define TS_DAY ((int64_t)86400)

#endif
