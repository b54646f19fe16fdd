/* fuzz_set.c: --set overrides: each input line is one key.path=value applied in order, then
 * config_validate. */
#include <string.h>

#include "tests/fuzz/fuzz_util.h"
#include "train/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    static Config c;
    char err[1024];
    char *text = fuzz_string(data, n);
    config_defaults(&c);
    int ok = 1;
    for (char *line = text, *next; ok && line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        ok = config_set(&c, line, err, sizeof err) == 0;
    }
    if (ok) config_validate(&c, err, sizeof err);
    free(text);
    return 0;
}
