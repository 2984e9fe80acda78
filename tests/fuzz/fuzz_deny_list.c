/* libFuzzer target: arbitrary bytes as a saved emergency deny list
 * (STATE/deny-list.txt). A corrupt file is refused with PATH:LINE and
 * leaves the list unchanged; a good one round-trips through save. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crl_cache.h"
#include "rcu_reader.h"
#include "deny_list.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64], path2[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/certval-fuzzdeny-XXXXXX";

    (void)argc;
    (void)argv;
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/deny-list.txt", dir);
    snprintf(path2, sizeof(path2), "%s/again.txt", dir);
    certval_rcu_reader_register();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct deny_list *d = deny_list_new(), *e = deny_list_new();
    char err[512];
    FILE *f = fopen(path, "wb");

    if (f == NULL || d == NULL || e == NULL)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    if (deny_list_load(d, path, 1800000000, err, sizeof(err)) == 0) {
        /* What loads, saves and loads back to the same entries. */
        if (deny_list_save(d, path2, err, sizeof(err)) != 0 ||
            deny_list_load(e, path2, 1800000000, err, sizeof(err)) != 0 ||
            deny_list_count(d) != deny_list_count(e))
            abort();
    }
    deny_list_free(d);
    deny_list_free(e);
    return 0;
}
