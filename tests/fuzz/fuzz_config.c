/* fuzz_config.c: the YAML config loader (config_load on a file: size cap, NUL check, nesting
 * pre-scan, libyaml, the key table) and config_validate. */
#include <string.h>

#include "tests/fuzz/fuzz_util.h"
#include "train/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    static Config c;
    char err[1024];
    const char *path = fuzz_write_file(data, n, ".yaml");
    config_defaults(&c);
    /* a valid config must write back and load again (an invalid one is only refused) */
    if (config_load(&c, path, err, sizeof err) == 0 && config_validate(&c, err, sizeof err) == 0) {
        char *yaml = config_to_string(&c);
        static Config again;
        if (config_load_string(&again, yaml, "round trip", err, sizeof err) != 0) abort();
        free(yaml);
    }
    return 0;
}
