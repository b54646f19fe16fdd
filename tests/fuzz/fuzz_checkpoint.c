/* fuzz_checkpoint.c: the checkpoint reader: ckpt_verify, ckpt_read_config (and loading that
 * config) and ckpt_load into the parameter block of the model the seeds were saved from
 * (tests/fuzz/corpus/checkpoint, made by tests/fuzz/make_seeds.sh). */
#include <string.h>

#include "model/transformer.h"
#include "tests/fuzz/fuzz_util.h"
#include "train/checkpoint.h"
#include "train/config.h"

static Transformer *model(void)
{
    static Transformer m;
    static int ready;
    if (!ready) {
        static Config c;
        char err[512];
        config_defaults(&c);
        const char *sets[] = {"model.n_layer=1", "model.d_model=4", "model.n_head=1",
                              "model.d_ff=4", "model.max_seq_len=8", "data.seq_len=8",
                              "probe.seq_len=8"};
        for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
            if (config_set(&c, sets[i], err, sizeof err) != 0) abort();
        if (config_validate(&c, err, sizeof err) != 0 ||
            transformer_init(&m, &c.model, 1, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_checkpoint: %s\n", err);
            abort();
        }
        ready = 1;
    }
    return &m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    Transformer *m = model();
    char err[1024];
    const char *path = fuzz_write_file(data, n, ".ckpt");
    if (ckpt_verify(path, err, sizeof err) != 0) return 0;
    char *yaml = NULL;
    if (ckpt_read_config(path, &yaml, err, sizeof err) == 0) {
        static Config c;
        if (config_load_string(&c, yaml, path, err, sizeof err) == 0) config_validate(&c, err, sizeof err);
        free(yaml);
    }
    CkptState st;
    ckpt_load(path, &m->params, &st, 1, err, sizeof err);
    return 0;
}
