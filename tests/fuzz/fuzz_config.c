/* libFuzzer target: arbitrary bytes as the YAML configuration file. A bad
 * file must be refused with FILE:LINE: problem, never crash or leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/certval-fuzzcfg-XXXXXX";
    FILE *f;

    (void)argc;
    (void)argv;
    if (mkdtemp(dir) == NULL)
        abort();
    /* Files a fuzzed configuration may name, so that inputs get past the
     * existence checks. */
    snprintf(path, sizeof(path), "%s/a.pem", dir);
    f = fopen(path, "w");
    if (f != NULL)
        fclose(f);
    snprintf(path, sizeof(path), "%s/certval.yaml", dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct certval_config *c = NULL;
    char err[1024];
    FILE *f = fopen(path, "wb");

    if (f == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    if (config_load(&c, path, err, sizeof(err)) == 0)
        config_free(c);
    else if (strncmp(err, path, strlen(path)) != 0)
        abort(); /* every refusal names the file */
    return 0;
}
