/* fuzz_corpus.c: the corpus reader on a plain text file: the first byte picks the separator,
 * the rest is the file (built twice: fuzz_corpus and, with FUZZ_GZIP, fuzz_corpus_gz, where the
 * file is named .gz and goes through zlib). */
#include <string.h>

#include "data/corpus.h"
#include "tests/fuzz/fuzz_util.h"

#ifdef FUZZ_GZIP
#define SUFFIX ".gz"
#else
#define SUFFIX ".txt"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    if (n < 1) return 0;
    static DataConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.corpus = CORPUS_FILES;
    cfg.separator = (Separator)(data[0] % 4);
    cfg.n_paths = 1;
    const char *path = fuzz_write_file(data + 1, n - 1, SUFFIX);
    snprintf(cfg.paths[0], sizeof cfg.paths[0], "%s", path);
    /* the memory budget's cap, small enough to be reached by the fuzzer (gzip bombs) */
    corpus_set_text_cap(1 << 20);
    Corpus c;
    char err[1024];
    if (corpus_load(&c, &cfg, err, sizeof err) == 0) {
        for (int64_t d = 0; d < c.n_docs; d++)
            if (corpus_doc_len(&c, d) <= 0) abort();
        corpus_free(&c);
    }
    return 0;
}
