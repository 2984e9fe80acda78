/* Tests for cache/deny_list: add/match/remove of both kinds, expiry,
 * persistence (round trip, corrupt files, missing file), refused input, and
 * readers racing a writer. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "crl_cache.h"
#include "rcu_reader.h"
#include "deny_list.h"
#include "support/tmpdir.h"

#define T0 INT64_C(1795000000)

static void reader_init(void)
{
    certval_rcu_reader_register();
}

static void fill(uint8_t out[32], uint8_t v)
{
    memset(out, v, 32);
}

/* One private folder per test (each test runs in its own process), made on
 * first use and removed by the suite's .fini. */
static char g_dir[TS_TMPDIR_MAX];

static void tmp_cleanup(void)
{
    ts_tmpdir_remove(g_dir);
}

/* tmp_path writes a path for |name| inside the test's private folder. */
static void tmp_path(char *out, size_t cap, const char *name)
{
    if (g_dir[0] == '\0')
        ts_tmpdir_make(g_dir, "deny");
    ts_path(out, cap, g_dir, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

TestSuite(deny_list, .init = reader_init, .fini = tmp_cleanup);

Test(deny_list, add_match_remove_serial)
{
    struct deny_list *d = deny_list_new();
    uint8_t iss[32], other[32];
    const uint8_t serial[] = {0x01, 0x02, 0x03};
    const uint8_t padded[] = {0x00, 0x01, 0x02, 0x03}; /* same INTEGER, non-minimal */
    char reason[64], err[256];

    fill(iss, 0x11);
    fill(other, 0x22);
    uint64_t g0 = deny_list_generation(d);
    cr_assert_not(deny_list_match_serial(d, iss, serial, 3, T0, reason, sizeof(reason)));
    cr_assert_eq(deny_list_add_serial(d, iss, serial, 3, "key compromise", T0, 0, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_gt(deny_list_generation(d), g0);
    cr_assert_eq(deny_list_count(d), 1);
    cr_assert(deny_list_match_serial(d, iss, serial, 3, T0, reason, sizeof(reason)));
    cr_assert_str_eq(reason, "key compromise");
    cr_assert(deny_list_match_serial(d, iss, padded, 4, T0, NULL, 0));
    cr_assert_not(deny_list_match_serial(d, other, serial, 3, T0, reason, sizeof(reason)));
    cr_assert_str_eq(reason, "");
    cr_assert_not(deny_list_match_serial(d, iss, serial, 2, T0, NULL, 0));
    /* A leaf entry with the issuer hash as its id is a different key. */
    cr_assert_not(deny_list_match_leaf(d, iss, T0, NULL, 0));

    /* Truncated copy of the reason, always NUL-terminated. */
    char small[4];
    cr_assert(deny_list_match_serial(d, iss, serial, 3, T0, small, sizeof(small)));
    cr_assert_str_eq(small, "key");

    /* Re-adding replaces. */
    cr_assert_eq(deny_list_add_serial(d, iss, padded, 4, "replaced", T0, 0, err, sizeof(err)), 0);
    cr_assert_eq(deny_list_count(d), 1);
    cr_assert(deny_list_match_serial(d, iss, serial, 3, T0, reason, sizeof(reason)));
    cr_assert_str_eq(reason, "replaced");

    uint64_t g1 = deny_list_generation(d);
    cr_assert_eq(deny_list_remove_serial(d, iss, serial, 3, err, sizeof(err)), 0);
    cr_assert_gt(deny_list_generation(d), g1);
    cr_assert_eq(deny_list_remove_serial(d, iss, serial, 3, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "");
    cr_assert_not(deny_list_match_serial(d, iss, serial, 3, T0, NULL, 0));
    cr_assert_eq(deny_list_count(d), 0);
    deny_list_free(d);
    deny_list_free(NULL);
}

Test(deny_list, add_match_remove_leaf)
{
    struct deny_list *d = deny_list_new();
    uint8_t leaf[32], other[32];
    char reason[DENY_LIST_REASON_MAX + 1], err[256];

    fill(leaf, 0xab);
    fill(other, 0xac);
    cr_assert_eq(deny_list_add_leaf(d, leaf, "", T0, 0, err, sizeof(err)), 0, "%s", err);
    cr_assert(deny_list_match_leaf(d, leaf, T0, reason, sizeof(reason)));
    cr_assert_str_eq(reason, "");
    cr_assert_not(deny_list_match_leaf(d, other, T0, NULL, 0));
    cr_assert_eq(deny_list_remove_leaf(d, other, err, sizeof(err)), -1);
    cr_assert_eq(deny_list_remove_leaf(d, leaf, err, sizeof(err)), 0);
    cr_assert_not(deny_list_match_leaf(d, leaf, T0, NULL, 0));
    deny_list_free(d);
}

Test(deny_list, many_entries_grow_and_shrink)
{
    struct deny_list *d = deny_list_new();
    uint8_t iss[32];
    char err[256];

    fill(iss, 1);
    for (uint32_t i = 0; i < 300; i++) {
        uint8_t s[4] = {0x10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        cr_assert_eq(deny_list_add_serial(d, iss, s, 4, "x", T0, 0, err, sizeof(err)), 0);
    }
    cr_assert_eq(deny_list_count(d), 300);
    for (uint32_t i = 0; i < 300; i += 2) {
        uint8_t s[4] = {0x10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        cr_assert_eq(deny_list_remove_serial(d, iss, s, 4, err, sizeof(err)), 0);
    }
    for (uint32_t i = 0; i < 300; i++) {
        uint8_t s[4] = {0x10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        cr_assert_eq(deny_list_match_serial(d, iss, s, 4, T0, NULL, 0), i % 2 == 1, "serial %u", i);
    }
    cr_assert_eq(deny_list_count(d), 150);
    deny_list_free(d);
}

Test(deny_list, expiry_and_purge)
{
    struct deny_list *d = deny_list_new();
    uint8_t leaf[32], leaf2[32];
    char err[256];

    fill(leaf, 3);
    fill(leaf2, 4);
    cr_assert_eq(deny_list_add_leaf(d, leaf, "temporary", T0, T0 + 60, err, sizeof(err)), 0);
    cr_assert_eq(deny_list_add_leaf(d, leaf2, "forever", T0, 0, err, sizeof(err)), 0);
    cr_assert(deny_list_match_leaf(d, leaf, T0 + 59, NULL, 0));
    cr_assert_not(deny_list_match_leaf(d, leaf, T0 + 60, NULL, 0)); /* expires_at is exclusive */
    cr_assert(deny_list_match_leaf(d, leaf2, T0 + 1000000, NULL, 0));
    cr_assert_eq(deny_list_count(d), 2);
    cr_assert_eq(deny_list_purge_expired(d, T0 + 10), 0);
    cr_assert_eq(deny_list_purge_expired(d, T0 + 60), 1);
    cr_assert_eq(deny_list_count(d), 1);
    cr_assert(deny_list_match_leaf(d, leaf2, T0, NULL, 0));
    /* An expiry in the past is refused. */
    cr_assert_eq(deny_list_add_leaf(d, leaf, "late", T0, T0, err, sizeof(err)), -1);
    cr_assert_eq(deny_list_add_leaf(d, leaf, "late", T0, T0 - 5, err, sizeof(err)), -1);
    deny_list_free(d);
}

Test(deny_list, refuses_garbage)
{
    struct deny_list *d = deny_list_new();
    uint8_t id[32], big[DENY_LIST_SERIAL_MAX + 1];
    char long_reason[DENY_LIST_REASON_MAX + 2], err[256];
    static const char *bad_reasons[] = {
        "tab\there", "new\nline", "\x7f", "\xff\xfe", "\xc0\xaf" /* overlong '/' */,
        "\xed\xa0\x80" /* surrogate */, "\xe2\x82" /* truncated */, "\xf4\x90\x80\x80" /* > U+10FFFF */,
    };

    fill(id, 9);
    memset(big, 0x42, sizeof(big));
    memset(long_reason, 'a', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = 0;
    cr_assert_eq(deny_list_add_serial(d, id, big, sizeof(big), "x", T0, 0, err, sizeof(err)), -1);
    cr_assert(strstr(err, "serial longer") != NULL, "%s", err);
    cr_assert_eq(deny_list_add_serial(d, id, big, 0, "x", T0, 0, err, sizeof(err)), -1);
    cr_assert_eq(deny_list_add_serial(d, id, NULL, 3, "x", T0, 0, err, sizeof(err)), -1);
    cr_assert_eq(deny_list_add_leaf(d, id, long_reason, T0, 0, err, sizeof(err)), -1);
    cr_assert(strstr(err, "reason longer") != NULL, "%s", err);
    cr_assert_eq(deny_list_add_leaf(d, id, NULL, T0, 0, err, sizeof(err)), -1);
    for (size_t i = 0; i < sizeof(bad_reasons) / sizeof(bad_reasons[0]); i++)
        cr_assert_eq(deny_list_add_leaf(d, id, bad_reasons[i], T0, 0, err, sizeof(err)), -1,
                     "reason %zu accepted", i);
    /* A 64-octet serial whose 65-octet form has a redundant 00 is fine. */
    big[0] = 0x00;
    big[1] = 0x01;
    cr_assert_eq(deny_list_add_serial(d, id, big, sizeof(big), "x", T0, 0, err, sizeof(err)), 0,
                 "%s", err);
    long_reason[DENY_LIST_REASON_MAX] = 0; /* exactly the maximum */
    cr_assert_eq(deny_list_add_leaf(d, id, long_reason, T0, 0, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(deny_list_count(d), 2);
    cr_assert_not(deny_list_match_serial(d, id, big, 0, T0, NULL, 0));
    deny_list_free(d);
}

Test(deny_list, issuer_key_and_serial_helpers)
{
    X509_NAME *name = X509_NAME_new();
    uint8_t key[32], want[32], *der = NULL, out[DENY_LIST_SERIAL_MAX];
    size_t len = 0;

    cr_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const uint8_t *)"Issuing CA",
                                         -1, -1, 0));
    int n = i2d_X509_NAME(name, &der);
    cr_assert_gt(n, 0);
    SHA256(der, (size_t)n, want);
    deny_list_issuer_key(key, name);
    cr_assert_arr_eq(key, want, 32);
    OPENSSL_free(der);
    X509_NAME_free(name);

    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    cr_assert(ASN1_INTEGER_set_uint64(serial, 0x80));
    cr_assert_eq(deny_list_serial_content(out, &len, serial), 0);
    cr_assert_eq(len, 2); /* 00 80: the content octets keep the sign octet */
    cr_assert_eq(out[0], 0x00);
    cr_assert_eq(out[1], 0x80);
    ASN1_INTEGER_free(serial);

    BIGNUM *bn = BN_new();
    cr_assert(BN_set_bit(bn, 8 * 70));
    serial = BN_to_ASN1_INTEGER(bn, NULL);
    cr_assert_eq(deny_list_serial_content(out, &len, serial), -1);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
}

/* ---- persistence ---------------------------------------------------------- */

struct listing {
    size_t n;
    char reasons[8][DENY_LIST_REASON_MAX + 1];
};

static int collect(const struct deny_list_entry *e, void *arg)
{
    struct listing *l = arg;
    cr_assert_lt(l->n, 8);
    snprintf(l->reasons[l->n++], sizeof(l->reasons[0]), "%s", e->reason);
    return 0;
}

Test(deny_list, save_load_round_trip)
{
    struct deny_list *d = deny_list_new(), *back = deny_list_new();
    uint8_t iss[32], leaf[32], leaf2[32];
    const uint8_t serial[] = {0x7f, 0xee};
    const char *unicode = "clé compromise — 鍵 🔑";
    char path[256], reason[DENY_LIST_REASON_MAX + 1], err[512];

    fill(iss, 0x5a);
    fill(leaf, 0xa5);
    fill(leaf2, 0x33);
    tmp_path(path, sizeof(path), "deny.list");
    cr_assert_eq(deny_list_add_serial(d, iss, serial, 2, "reason with spaces", T0, 0, err,
                                      sizeof(err)), 0, "%s", err);
    cr_assert_eq(deny_list_add_leaf(d, leaf, unicode, T0 + 1, T0 + 100, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(deny_list_add_leaf(d, leaf2, "", T0 + 2, T0 + 10, err, sizeof(err)), 0);
    cr_assert_eq(deny_list_save(d, path, err, sizeof(err)), 0, "%s", err);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_neq(access(tmp, F_OK), 0, "temporary file left behind");

    /* Loaded at T0 + 50: the entry that expired at T0 + 10 is dropped. */
    cr_assert_eq(deny_list_load(back, path, T0 + 50, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(deny_list_count(back), 2);
    cr_assert(deny_list_match_serial(back, iss, serial, 2, T0 + 50, reason, sizeof(reason)));
    cr_assert_str_eq(reason, "reason with spaces");
    cr_assert(deny_list_match_leaf(back, leaf, T0 + 50, reason, sizeof(reason)));
    cr_assert_str_eq(reason, unicode);
    cr_assert_not(deny_list_match_leaf(back, leaf, T0 + 100, NULL, 0)); /* expiry kept */
    cr_assert_not(deny_list_match_leaf(back, leaf2, T0 + 5, NULL, 0));

    struct listing l = {0};
    cr_assert_eq(deny_list_foreach(back, collect, &l), 0);
    cr_assert_eq(l.n, 2);

    /* Loading replaces the contents (it does not merge). */
    struct deny_list *empty = deny_list_new();
    char path2[256];
    tmp_path(path2, sizeof(path2), "empty.list");
    cr_assert_eq(deny_list_save(empty, path2, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(deny_list_load(back, path2, T0, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(deny_list_count(back), 0);
    deny_list_free(empty);
    deny_list_free(back);
    deny_list_free(d);
}

Test(deny_list, missing_file_is_empty)
{
    struct deny_list *d = deny_list_new();
    uint8_t leaf[32];
    char path[256], err[256];

    fill(leaf, 1);
    cr_assert_eq(deny_list_add_leaf(d, leaf, "kept", T0, 0, err, sizeof(err)), 0);
    tmp_path(path, sizeof(path), "absent.list");
    cr_assert_eq(deny_list_load(d, path, T0, err, sizeof(err)), 0);
    cr_assert_eq(deny_list_count(d), 1); /* unchanged */
    deny_list_free(d);
}

struct corrupt_case {
    const char *text;
    const char *where; /* ":LINE:" expected in the message */
    const char *what;
};

static const char L64[] = "0101010101010101010101010101010101010101010101010101010101010101";

Test(deny_list, corrupt_files_name_the_line)
{
    static char buf[8][1400];
    char long_line[1100];

    memset(long_line, 'a', sizeof(long_line) - 1);
    long_line[sizeof(long_line) - 1] = 0;
    snprintf(buf[0], sizeof(buf[0]), "certval-deny-list 1\nleaf %s 1 0 -\nleaf %s 1 0 zz\nend 2\n",
             L64, L64 + 2);
    snprintf(buf[1], sizeof(buf[1]), "certval-deny-list 1\nleaf %s 1 0 -\n", L64);
    snprintf(buf[2], sizeof(buf[2]), "certval-deny-list 1\nleaf %s 1 0 -\nleaf %s 2 0 -\nend 2\n",
             L64, L64);
    snprintf(buf[3], sizeof(buf[3]), "certval-deny-list 1\n%s\nend 0\n", long_line);
    snprintf(buf[4], sizeof(buf[4]), "certval-deny-list 1\nserial %s 0001 1 0 -\nend 1\n", L64);
    snprintf(buf[5], sizeof(buf[5]), "certval-deny-list 1\nleaf %s -1 0 -\nend 1\n", L64);
    snprintf(buf[6], sizeof(buf[6]), "certval-deny-list 1\nleaf %s 1 0 090a\nend 1\n", L64);
    snprintf(buf[7], sizeof(buf[7]), "certval-deny-list 1\nend 0\nleaf %s 1 0 -\n", L64);
    const struct corrupt_case cases[] = {
        {"certval-deny-list 2\nend 0\n", ":1:", "not a certval deny list"},
        {"", ":1:", "empty file"},
        {buf[0], ":3:", "SHA-256"},
        {buf[1], ":3:", "missing end line"},
        {buf[2], ":3:", "duplicate"},
        {buf[3], ":2:", "longer than 1024"},
        {buf[4], ":2:", "minimally"},
        {buf[5], ":2:", "created_at"},
        {buf[6], ":2:", "UTF-8"},
        {buf[7], ":3:", "after the end"},
        {"certval-deny-list 1\nend 5\n", ":2:", "count"},
        {"certval-deny-list 1\nbogus\nend 0\n", ":2:", "unknown line type"},
        {"certval-deny-list 1\nend 0", ":2:", "missing newline"},
    };
    char path[256], err[512];
    uint8_t leaf[32];

    tmp_path(path, sizeof(path), "corrupt.list");
    fill(leaf, 7);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct deny_list *d = deny_list_new();
        cr_assert_eq(deny_list_add_leaf(d, leaf, "before", T0, 0, err, sizeof(err)), 0);
        write_file(path, cases[i].text);
        err[0] = 0;
        cr_assert_eq(deny_list_load(d, path, T0, err, sizeof(err)), -1, "case %zu loaded", i);
        cr_assert(strstr(err, cases[i].where) != NULL, "case %zu: %s", i, err);
        cr_assert(strstr(err, cases[i].what) != NULL, "case %zu: %s", i, err);
        cr_assert(deny_list_match_leaf(d, leaf, T0, NULL, 0), "case %zu changed the list", i);
        cr_assert_eq(deny_list_count(d), 1);
        deny_list_free(d);
    }
}

/* ---- readers racing a writer ----------------------------------------------
 *
 * The writer adds serial i with reason "entry <i>" and removes serial i - 1,
 * so every snapshot holds one or two consecutive entries. Readers check that
 * a match always carries the reason of the serial asked for (never a
 * half-built entry), that a foreach sees at most two entries each consistent
 * with its serial, and that generations never go down.
 *
 * Synchronised on events, not on time: all threads start together (a
 * barrier), and at RACE_CHECKPOINTS points the writer, having just added
 * serial i, publishes i as a checkpoint and waits until every reader has
 * answered it. A reader answers by finding serial i (RACE_TRIES lookups at
 * most: the writer holds still meanwhile, so one should do), and records a
 * miss otherwise. So every reader provably runs while the writer changes the
 * list, and each must see a published entry, however loaded the machine.
 * Bounded: the writer does a fixed number of changes; each answer takes at
 * most RACE_TRIES lookups; readers stop when the writer is done. */

#define RACE_CHANGES 3000
#define RACE_READERS 3
#define RACE_CHECKPOINTS 8
#define RACE_TRIES 100000

struct race {
    struct deny_list *d;
    uint8_t iss[32];
    pthread_barrier_t start;
    pthread_mutex_t mu;
    pthread_cond_t answered_cv;
    uint32_t checkpoint; /* atomic: serial + 1 the writer holds still on, 0 none */
    int answered;        /* under mu: readers that answered the checkpoint */
    int done;            /* atomic */
    int failures;        /* atomic */
    int misses;          /* atomic: checkpoints a reader did not find */
    long matches;        /* atomic */
};

static void serial_of(uint32_t i, uint8_t s[4])
{
    s[0] = 0x01;
    s[1] = (uint8_t)(i >> 16);
    s[2] = (uint8_t)(i >> 8);
    s[3] = (uint8_t)i;
}

static uint32_t index_of(const uint8_t *s)
{
    return (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
}

static int check_entry(const struct deny_list_entry *e, void *arg)
{
    size_t *n = arg;
    char want[32];

    (*n)++;
    if (e->kind != DENY_LIST_SERIAL || e->serial_len != 4)
        return 1;
    snprintf(want, sizeof(want), "entry %u", index_of(e->serial));
    return strcmp(want, e->reason) != 0;
}

/* race_match looks serial k up; counts a wrong reason as a failure. */
static bool race_match(struct race *r, uint32_t k)
{
    char reason[64], want[64];
    uint8_t s[4];

    serial_of(k, s);
    if (!deny_list_match_serial(r->d, r->iss, s, 4, T0, reason, sizeof(reason)))
        return false;
    __atomic_add_fetch(&r->matches, 1, __ATOMIC_RELAXED);
    snprintf(want, sizeof(want), "entry %u", k);
    if (strcmp(reason, want) != 0)
        __atomic_add_fetch(&r->failures, 1, __ATOMIC_RELAXED);
    return true;
}

/* race_answer finds the checkpoint's serial and tells the writer. */
static void race_answer(struct race *r, uint32_t serial)
{
    int found = 0;

    for (int t = 0; t < RACE_TRIES && !found; t++)
        found = race_match(r, serial);
    if (!found)
        __atomic_add_fetch(&r->misses, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&r->mu);
    r->answered++;
    pthread_cond_signal(&r->answered_cv);
    pthread_mutex_unlock(&r->mu);
}

static void *race_reader(void *arg)
{
    struct race *r = arg;
    uint64_t last_gen = 0;
    uint32_t last_cp = 0;

    certval_rcu_reader_register();
    pthread_barrier_wait(&r->start);
    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
        uint32_t cp = __atomic_load_n(&r->checkpoint, __ATOMIC_ACQUIRE);
        if (cp != 0 && cp != last_cp) {
            race_answer(r, cp - 1);
            last_cp = cp;
        }
        uint64_t g = deny_list_generation(r->d);
        if (g < last_gen)
            __atomic_add_fetch(&r->failures, 1, __ATOMIC_RELAXED);
        last_gen = g;
        uint32_t i = (uint32_t)(g / 2); /* near the writer's current index */
        for (uint32_t k = i > 2 ? i - 2 : 0; k <= i + 2; k++)
            race_match(r, k);
        size_t n = 0;
        if (deny_list_foreach(r->d, check_entry, &n) != 0 || n > 2)
            __atomic_add_fetch(&r->failures, 1, __ATOMIC_RELAXED);
    }
    certval_rcu_reader_unregister();
    return NULL;
}

/* race_hold publishes serial i as a checkpoint and waits for every reader's
 * answer; each answer comes after at most RACE_TRIES lookups. */
static void race_hold(struct race *r, uint32_t i)
{
    pthread_mutex_lock(&r->mu);
    r->answered = 0;
    __atomic_store_n(&r->checkpoint, i + 1, __ATOMIC_RELEASE);
    while (r->answered < RACE_READERS)
        pthread_cond_wait(&r->answered_cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

Test(deny_list, readers_race_writer, .timeout = 120)
{
    struct race r = {.d = deny_list_new()};
    pthread_t th[RACE_READERS];
    char err[256], reason[32];

    fill(r.iss, 0x77);
    cr_assert_eq(pthread_barrier_init(&r.start, NULL, RACE_READERS + 1), 0);
    cr_assert_eq(pthread_mutex_init(&r.mu, NULL), 0);
    cr_assert_eq(pthread_cond_init(&r.answered_cv, NULL), 0);
    for (int t = 0; t < RACE_READERS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, race_reader, &r), 0);
    pthread_barrier_wait(&r.start);
    for (uint32_t i = 0; i < RACE_CHANGES; i++) {
        uint8_t s[4], prev[4];
        serial_of(i, s);
        snprintf(reason, sizeof(reason), "entry %u", i);
        cr_assert_eq(deny_list_add_serial(r.d, r.iss, s, 4, reason, T0, 0, err, sizeof(err)), 0);
        if (i % (RACE_CHANGES / RACE_CHECKPOINTS) == RACE_CHANGES / RACE_CHECKPOINTS / 2)
            race_hold(&r, i);
        if (i > 0) {
            serial_of(i - 1, prev);
            cr_assert_eq(deny_list_remove_serial(r.d, r.iss, prev, 4, err, sizeof(err)), 0);
        }
    }
    __atomic_store_n(&r.done, 1, __ATOMIC_RELEASE);
    for (int t = 0; t < RACE_READERS; t++)
        pthread_join(th[t], NULL);
    cr_assert_eq(r.failures, 0, "%d inconsistent observations", r.failures);
    cr_assert_eq(r.misses, 0,
                 "%d of %d checkpoints: a reader never saw the entry the writer had added",
                 r.misses, RACE_READERS * RACE_CHECKPOINTS);
    cr_assert_gt(r.matches, 0);
    cr_assert_eq(deny_list_count(r.d), 1);
    cr_assert_eq(deny_list_generation(r.d), 2 * RACE_CHANGES - 1);
    pthread_barrier_destroy(&r.start);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.answered_cv);
    deny_list_free(r.d);
}

#include <sys/stat.h> /* mkdir, for the store test only */

/* With a store, a change is in the file before it is in force, and a
 * change the file cannot take is not made at all. */
Test(deny_list, store_is_written_before_a_change_takes_effect)
{
    struct deny_list *d = deny_list_new(), *back = deny_list_new();
    uint8_t leaf[32], leaf2[32];
    char path[256], tmp[300], err[512];

    fill(leaf, 0x42);
    fill(leaf2, 0x43);
    tmp_path(path, sizeof(path), "deny-list.txt");
    cr_assert_eq(deny_list_set_store(d, path, err, sizeof(err)), 0);
    cr_assert_eq(deny_list_add_leaf(d, leaf, "stolen", T0, 0, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(deny_list_load(back, path, T0, err, sizeof(err)), 0, "%s", err);
    cr_assert(deny_list_match_leaf(back, leaf, T0, NULL, 0), "the add is not in the file");

    /* A folder where the temporary file must go: the write fails. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    err[0] = '\0';
    cr_assert_eq(deny_list_add_leaf(d, leaf2, "lost", T0, 0, err, sizeof(err)), DENY_LIST_ESTORE);
    cr_assert(strstr(err, ".tmp") != NULL, "%s", err);
    cr_assert_not(deny_list_match_leaf(d, leaf2, T0, NULL, 0), "refused add is in force");
    cr_assert_eq(deny_list_count(d), 1);
    cr_assert_eq(deny_list_remove_leaf(d, leaf, err, sizeof(err)), DENY_LIST_ESTORE);
    cr_assert(deny_list_match_leaf(d, leaf, T0, NULL, 0), "refused remove took effect");
    uint64_t gen = deny_list_generation(d);

    /* Fixed: the next change is stored, the refused ones never were. */
    cr_assert_eq(rmdir(tmp), 0);
    cr_assert_eq(deny_list_remove_leaf(d, leaf, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(deny_list_generation(d), gen + 1);
    cr_assert_eq(deny_list_load(back, path, T0, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(deny_list_count(back), 0);
    deny_list_free(back);
    deny_list_free(d);
}
