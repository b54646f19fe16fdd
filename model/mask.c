/* mask.c: resolves model kind, window, document masking, padding and edits into the allowed
 * table (see mask.h for the rules and their order). */
#include "model/mask.h"

#include <string.h>

#include "model/tensor.h"

const char *const MASK_EDIT_NAMES[] = {
    [EDIT_ISOLATE] = "isolate", [EDIT_RESET] = "reset", [EDIT_BLOCK_KEY] = "block_key", NULL,
};

/* Base kind, window and doc mask for query i of one sequence. */
static void mask_row_base(uint8_t *row, ModelKind kind, const MaskSpec *spec,
                          const int32_t *doc, int prefix, int i, int T)
{
    for (int j = 0; j < T; j++) {
        int ok;
        switch (kind) {
        case MODEL_CAUSAL: ok = j <= i; break;
        case MODEL_PREFIX_LM: ok = j <= i || j < prefix; break;
        default: ok = 1; break;
        }
        /* j <= i already holds for causal rows, so |i - j| < W covers both kinds. */
        if (spec && spec->window > 0 && (i - j >= spec->window || j - i >= spec->window)) ok = 0;
        if (spec && spec->doc_mask && doc && doc[i] != doc[j]) ok = 0;
        row[j] = (uint8_t)ok;
    }
}

/* PAD keys are never seen; a PAD query sees only itself. */
static void mask_apply_padding(uint8_t *m, const int32_t *doc, int T)
{
    for (int i = 0; i < T; i++) {
        uint8_t *row = m + (size_t)i * T;
        if (doc[i] < 0) {
            memset(row, 0, (size_t)T);
            row[i] = 1;
            continue;
        }
        for (int j = 0; j < T; j++)
            if (doc[j] < 0) row[j] = 0;
    }
}

/* Edits at positions outside [0, T) do nothing (a probe may be shorter than the edit's target). */
static void mask_apply_edit(uint8_t *m, const MaskEdit *e, int T)
{
    int p = e->pos;
    if (p < 0 || p >= T) return;
    switch (e->kind) {
    case EDIT_ISOLATE:
        memset(m + (size_t)p * T, 0, (size_t)T);
        m[(size_t)p * T + p] = 1;
        break;
    case EDIT_RESET:
        for (int i = p; i < T; i++) memset(m + (size_t)i * T, 0, (size_t)p);
        break;
    case EDIT_BLOCK_KEY:
        for (int i = 0; i < T; i++)
            if (i != p) m[(size_t)i * T + p] = 0;
        break;
    }
}

void mask_build(uint8_t *allowed, ModelKind kind, const MaskSpec *spec,
                const int32_t *doc_ids, const int32_t *prefix_len, int B, int T)
{
    SL_CHECK(kind != MODEL_PREFIX_LM || prefix_len, "mask_build: prefix-LM needs prefix_len");
    SL_CHECK(!spec || (spec->n_edits >= 0 && spec->n_edits <= MASK_MAX_EDITS),
             "mask_build: %d edits (at most %d)", spec ? spec->n_edits : 0, MASK_MAX_EDITS);
    for (int b = 0; b < B; b++) {
        uint8_t *m = allowed + (size_t)b * T * T;
        const int32_t *doc = doc_ids ? doc_ids + (size_t)b * T : NULL;
        int prefix = prefix_len ? prefix_len[b] : 0;
        for (int i = 0; i < T; i++) mask_row_base(m + (size_t)i * T, kind, spec, doc, prefix, i, T);
        if (doc) mask_apply_padding(m, doc, T);
        for (int e = 0; spec && e < spec->n_edits; e++) mask_apply_edit(m, &spec->edits[e], T);
        /* Safety: every row keeps at least one key, so no normaliser ever divides by zero. */
        for (int i = 0; i < T; i++) {
            uint8_t *row = m + (size_t)i * T, any = 0;
            for (int j = 0; j < T; j++) any |= row[j];
            if (!any) row[i] = 1;
        }
    }
}
