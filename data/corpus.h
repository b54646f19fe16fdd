/* corpus.h: documents as raw bytes. A corpus is one byte buffer with document offsets, loaded from
 * plain or gzip text files, directories, the fortunes or Brown corpora, or generated (synthetic.h).
 * Every user-input error returns -1 with a message naming the file and what was expected. */
#ifndef SINKLAB_CORPUS_H
#define SINKLAB_CORPUS_H

#include <stddef.h>
#include <stdint.h>
#include "data/data_config.h"

#define CORPUS_FORTUNES_DIR "/usr/share/games/fortunes"
#define CORPUS_BROWN_SUBDIR "brown"   /* under $SINKLAB_DATA_DIR, else under <install>/data_cache/ */

typedef struct {
    uint8_t *text;          /* all documents back to back */
    int64_t n_text, cap_text;
    int64_t max_text;       /* refuse to read more text than this (0 = no cap) */
    int64_t *doc_off;       /* (n_docs + 1) offsets into text: document d is [doc_off[d], doc_off[d+1]) */
    int32_t *doc_file;      /* (n_docs) index into files */
    int32_t *doc_line;      /* (n_docs) 1-based line where the document starts in its file */
    int64_t n_docs, cap_docs;
    char **files;           /* source names, for messages */
    int n_files, cap_files;
    char desc[600];         /* "fortunes: /usr/share/games/fortunes (43 files)" */
} Corpus;

void corpus_init(Corpus *c);
void corpus_free(Corpus *c);
/* Caps the text corpus_load reads from files (the memory budget's share for the corpus;
 * 0 = no cap). A process-wide setting made once by the command before loading. */
void corpus_set_text_cap(int64_t bytes);
/* Loads the corpus cfg names (cfg->corpus, cfg->paths, cfg->separator, synthetic settings). */
int corpus_load(Corpus *c, const DataConfig *cfg, char *err, size_t n_err);

/* Building blocks (used by the loaders, the synthetic generator and tests). */
int corpus_add_source(Corpus *c, const char *name);
void corpus_add_doc(Corpus *c, const uint8_t *text, int64_t n, int file, int line);
/* Splits buf into documents by sep and appends them; returns how many were added. */
int64_t corpus_split_text(Corpus *c, const uint8_t *buf, int64_t n, Separator sep, int file);
static inline int64_t corpus_doc_len(const Corpus *c, int64_t d) { return c->doc_off[d + 1] - c->doc_off[d]; }
/* "file:line" of document d, for messages. */
void corpus_doc_where(const Corpus *c, int64_t d, char *out, size_t cap);

/* Brown corpus text ("The/at jury/nn said/vbd ./.") back to plain text ("The jury said."):
 * tags stripped at the last '/', ``/'' become quotes, punctuation attached, one paragraph per
 * line. out needs n bytes; returns the length written. */
int64_t brown_detag(uint8_t *out, const uint8_t *in, int64_t n);
/* Where the Brown corpus is looked for when data.path is unset: $SINKLAB_DATA_DIR/brown when
 * the variable is set, else data_cache/brown in the folder that holds the running binary's folder
 * (build/sinklab -> the repository), whatever the current directory. */
void corpus_brown_dir(char *out, size_t cap);

const char *separator_name(Separator s);

#endif
