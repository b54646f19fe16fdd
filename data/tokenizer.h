/* tokenizer.h: the byte-level tokenizer. Ids 0..255 are bytes; the special tokens follow. */
#ifndef SINKLAB_TOKENIZER_H
#define SINKLAB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

enum {
    TOK_BOS = 256,
    TOK_EOS = 257,
    TOK_PAD = 258,
    TOK_MASK = 259,
    TOK_CLS = 260,
    TOK_SEP = 261,
    TOK_VOCAB_SIZE = 262
};

/* ids must hold n entries; returns n (every byte is one token). */
size_t tok_encode(const unsigned char *bytes, size_t n, int32_t *ids);
/* Renders ids readably into out (specials as <bos>, <eos>, <pad>, <mask>, <cls>, <sep>);
 * returns the length written (always NUL-terminated when cap > 0). Bytes outside printable
 * ASCII (except newline and tab and valid UTF-8 high bytes) are escaped as \xNN. */
size_t tok_decode(const int32_t *ids, size_t n, char *out, size_t cap);
/* Exact inverse of tok_encode for ids < 256; returns -1 if an id is not a byte. */
long tok_decode_bytes(const int32_t *ids, size_t n, unsigned char *out);
const char *tok_special_name(int32_t id);   /* "<bos>" etc., NULL for a byte */

#endif
