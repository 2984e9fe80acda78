/* civil_days: days since 1970-01-01 of year |y|, month |m| (1-12) and day
 * |d| of the proleptic Gregorian calendar (H. Hinnant's days_from_civil),
 * without timegm and the TZ environment. Linear in |d|: a day past the end
 * of its month lands in the next month (callers that refuse such dates
 * check the day first). Shared by the CRL parser (cache/crl_parse.c) and
 * the certificate time readers (validator/load.c).
 * Conventions: pure, thread-safe. */
#ifndef CERTVAL_CIVIL_TIME_H
#define CERTVAL_CIVIL_TIME_H

#include <stdint.h>

static inline int64_t civil_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

#endif
