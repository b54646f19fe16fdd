/* tokenizer.c: the byte-level tokenizer (see tokenizer.h). Encoding is the identity on bytes, so
 * any byte string round-trips; decoding for people renders specials by name and escapes bytes
 * that would garble a terminal. */
#include "data/tokenizer.h"

#include <stdio.h>
#include <string.h>

static const char *const SPECIAL_NAMES[] = {"<bos>", "<eos>", "<pad>", "<mask>", "<cls>", "<sep>"};

size_t tok_encode(const unsigned char *bytes, size_t n, int32_t *ids)
{
    for (size_t i = 0; i < n; i++) ids[i] = bytes[i];
    return n;
}

long tok_decode_bytes(const int32_t *ids, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] > 255) return -1;
        out[i] = (unsigned char)ids[i];
    }
    return (long)n;
}

const char *tok_special_name(int32_t id)
{
    if (id < TOK_BOS || id >= TOK_VOCAB_SIZE) return NULL;
    return SPECIAL_NAMES[id - TOK_BOS];
}

/* Length of a valid UTF-8 sequence starting at ids[i] (all ids bytes), 0 if not valid. */
static size_t utf8_run(const int32_t *ids, size_t i, size_t n)
{
    int32_t c = ids[i];
    size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (len == 0 || i + len > n) return 0;
    for (size_t k = 1; k < len; k++)
        if (ids[i + k] < 0x80 || ids[i + k] > 0xBF) return 0;
    return len;
}

/* Appends piece (len bytes) if it fits entirely (leaving room for the NUL); returns 0 if not. */
static int put(char *out, size_t cap, size_t *w, const char *piece, size_t len)
{
    if (*w + len + 1 > cap) return 0;
    memcpy(out + *w, piece, len);
    *w += len;
    return 1;
}

size_t tok_decode(const int32_t *ids, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    char tmp[16];
    if (cap == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = ids[i];
        const char *name = tok_special_name(c);
        int ok;
        if (name) {
            ok = put(out, cap, &w, name, strlen(name));
        } else if (c < 0 || c >= TOK_VOCAB_SIZE) {
            int len = snprintf(tmp, sizeof tmp, "<?%d>", (int)c);
            ok = put(out, cap, &w, tmp, (size_t)len);
        } else if ((c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t') {
            tmp[0] = (char)c;
            ok = put(out, cap, &w, tmp, 1);
        } else if (c >= 0x80 && utf8_run(ids, i, n)) {
            size_t len = utf8_run(ids, i, n);
            for (size_t k = 0; k < len; k++) tmp[k] = (char)(unsigned char)ids[i + k];
            ok = put(out, cap, &w, tmp, len);
            if (ok) i += len - 1;
        } else {
            int len = snprintf(tmp, sizeof tmp, "\\x%02X", (unsigned)c);
            ok = put(out, cap, &w, tmp, (size_t)len);
        }
        if (!ok) break;
    }
    out[w] = '\0';
    return w;
}
