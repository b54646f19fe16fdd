/* intervene.c: the intervention spec language and its application to a probe batch, the mask
 * and per-layer attention edits (intervene.h). Pure data transformations: the forward pass is
 * the training one, driven by train/cmd_analyze.c. */
#include "analysis/intervene.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/check.h"
#include "base/rng.h"
#include "data/tokenizer.h"

/* randomize_first draws from a fixed stream: the same spec gives the same sequences. */
#define IV_RANDOM_SEED 0x1a7e5eedULL

const char *const IV_KIND_NAMES[] = {
    [IV_DROP_BOS] = "drop_bos", [IV_ADD_BOS] = "add_bos", [IV_REPLACE_FIRST] = "replace_first",
    [IV_RANDOMIZE_FIRST] = "randomize_first", [IV_FIXED_TOKEN] = "fixed_token",
    [IV_ISOLATE] = "isolate", [IV_RESET] = "reset", [IV_WINDOW] = "window",
    [IV_BLOCK_KEY] = "block_key", [IV_ZERO_VALUE] = "zero_value", [IV_SCALE_ATTN] = "scale_attn",
    [IV_POS_SWAP] = "pos_swap", [IV_POS_SHIFT] = "pos_shift", [IV_POS_AS] = "pos_as",
    [IV_PERTURB] = "perturb", NULL,
};

/* What each spec takes, for error messages: the form a user should have written. */
static const char *const IV_FORMS[] = {
    [IV_DROP_BOS] = "drop_bos", [IV_ADD_BOS] = "add_bos", [IV_REPLACE_FIRST] = "replace_first:ID",
    [IV_RANDOMIZE_FIRST] = "randomize_first[:N]", [IV_FIXED_TOKEN] = "fixed_token:ID@P",
    [IV_ISOLATE] = "isolate:P", [IV_RESET] = "reset:P", [IV_WINDOW] = "window:W",
    [IV_BLOCK_KEY] = "block_key:P[@L.H]", [IV_ZERO_VALUE] = "zero_value:P[@L.H]",
    [IV_SCALE_ATTN] = "scale_attn:P,F[@L.H]", [IV_POS_SWAP] = "pos_swap:I,J",
    [IV_POS_SHIFT] = "pos_shift:K", [IV_POS_AS] = "pos_as:J=I",
    [IV_PERTURB] = "perturb:P[:noise=S|id=ID]",
};

static int is_head_edit(IvKind k)
{
    return k == IV_BLOCK_KEY || k == IV_ZERO_VALUE || k == IV_SCALE_ATTN;
}

/* Edits of the probe batch itself (tokens, positions, length): they apply first. */
static int is_sequence_edit(IvKind k)
{
    switch (k) {
    case IV_DROP_BOS: case IV_ADD_BOS: case IV_REPLACE_FIRST: case IV_RANDOMIZE_FIRST:
    case IV_FIXED_TOKEN: case IV_POS_SWAP: case IV_POS_SHIFT: case IV_POS_AS:
        return 1;
    default:
        return 0;
    }
}

static int is_position_edit(IvKind k)
{
    return k == IV_POS_SWAP || k == IV_POS_SHIFT || k == IV_POS_AS;
}

/* ---- parsing ---- */

/* A whole-string integer in [lo, hi]. */
static int parse_int(const char *s, long lo, long hi, int *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, float lo, float *out)
{
    if (!s || !*s) return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < lo) return -1;
    *out = (float)v;
    return 0;
}

/* Splits s at the first c: s keeps the head, the tail is returned (NULL if no c). */
static char *split_at(char *s, char c)
{
    char *p = strchr(s, c);
    if (!p) return NULL;
    *p = 0;
    return p + 1;
}

static int parse_targets(IvOp *op, char *s, const char *spec, char *err, size_t n)
{
    /* "1.2@2.0" and "1.2,2.0" both list targets */
    for (char *tok = strtok(s, "@,"); tok; tok = strtok(NULL, "@,")) {
        if (op->n_targets >= IV_MAX_TARGETS) {
            snprintf(err, n, "'%s': at most %d targets per operation", spec, IV_MAX_TARGETS);
            return -1;
        }
        IvTarget *t = &op->targets[op->n_targets++];
        char *head = split_at(tok, '.');
        t->head = -1;
        if (parse_int(tok, 0, 1 << 20, &t->layer) ||
            (head && parse_int(head, 0, 1 << 20, &t->head))) {
            snprintf(err, n, "'%s': %s: expected a target @L or @L.H (layer, head: integers >= 0)",
                     spec, IV_KIND_NAMES[op->kind]);
            return -1;
        }
    }
    return 0;
}

/* Arguments of one operation (args may be NULL: none written). */
static int parse_args(IvOp *op, char *args, const char *spec, char *err, size_t n)
{
    char given[IV_SPEC_LEN];
    snprintf(given, sizeof given, "%s", args ? args : "");
    char *b = NULL;
    int bad = 0;
    op->pos = op->pos2 = 0;
    op->id = -1;
    op->factor = NAN;
    switch (op->kind) {
    case IV_DROP_BOS: case IV_ADD_BOS:
        bad = args != NULL;
        break;
    case IV_REPLACE_FIRST:
        bad = parse_int(args, 0, 1 << 30, &op->id);
        break;
    case IV_RANDOMIZE_FIRST:
        op->pos = 1;
        bad = args && parse_int(args, 1, 1 << 20, &op->pos);
        break;
    case IV_FIXED_TOKEN:
        b = args ? split_at(args, '@') : NULL;
        bad = parse_int(args, 0, 1 << 30, &op->id) || parse_int(b, 0, 1 << 20, &op->pos);
        break;
    case IV_ISOLATE: case IV_RESET: case IV_BLOCK_KEY: case IV_ZERO_VALUE:
        bad = parse_int(args, 0, 1 << 20, &op->pos);
        break;
    case IV_WINDOW:
        bad = parse_int(args, 1, 1 << 20, &op->pos);
        break;
    case IV_SCALE_ATTN:
        b = args ? split_at(args, ',') : NULL;
        bad = parse_int(args, 0, 1 << 20, &op->pos) || parse_float(b, 0.0f, &op->factor);
        break;
    case IV_POS_SWAP:
        b = args ? split_at(args, ',') : NULL;
        bad = parse_int(args, 0, 1 << 20, &op->pos) || parse_int(b, 0, 1 << 20, &op->pos2) ||
              op->pos == op->pos2;
        break;
    case IV_POS_SHIFT:
        bad = parse_int(args, -(1 << 20), 1 << 20, &op->pos);
        break;
    case IV_POS_AS:
        /* pos_as:J=I gives position J the id of position I */
        b = args ? split_at(args, '=') : NULL;
        bad = parse_int(args, 0, 1 << 20, &op->pos2) || parse_int(b, 0, 1 << 20, &op->pos);
        break;
    case IV_PERTURB:
        b = args ? split_at(args, ':') : NULL;
        bad = parse_int(args, 0, 1 << 20, &op->pos);
        if (!bad && b) {
            char *v = split_at(b, '=');
            if (!strcmp(b, "noise")) bad = parse_float(v, 0.0f, &op->factor);
            else if (!strcmp(b, "id")) bad = parse_int(v, 0, 1 << 30, &op->id);
            else bad = 1;
        }
        break;
    }
    if (bad) {
        snprintf(err, n, "'%s': %s: expected %s (P, I, J, N, W, ID: integers >= 0, K an integer, "
                 "F and S numbers >= 0), got %s%s%s", spec, IV_KIND_NAMES[op->kind],
                 IV_FORMS[op->kind], args ? "'" : "no arguments", args ? given : "", args ? "'" : "");
        return -1;
    }
    return 0;
}

static int parse_op(IvOp *op, char *text, const char *spec, char *err, size_t n)
{
    memset(op, 0, sizeof *op);
    size_t len = strcspn(text, ":@");
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(len < 31 ? len : 31), text);
    int k = 0;
    while (IV_KIND_NAMES[k] && strcmp(IV_KIND_NAMES[k], name)) k++;
    if (!IV_KIND_NAMES[k]) {
        char list[512] = "";
        for (int i = 0; IV_KIND_NAMES[i]; i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, IV_KIND_NAMES[i], sizeof list - strlen(list) - 1);
        }
        snprintf(err, n, "'%s': unknown intervention '%s' (expected one of %s)", spec, name, list);
        return -1;
    }
    op->kind = (IvKind)k;
    char *rest = text + len, *args = NULL, *targets = NULL;
    if (*rest == ':') {
        args = rest + 1;
        /* fixed_token:ID@P keeps its @P: it names the position, not a head */
        if (op->kind != IV_FIXED_TOKEN) targets = split_at(args, '@');
    } else if (*rest == '@') {
        targets = rest + 1;
    }
    if (parse_args(op, args, spec, err, n)) return -1;
    if (targets && !is_head_edit(op->kind)) {
        snprintf(err, n, "'%s': %s: a target @L.H applies to block_key, zero_value and "
                 "scale_attn only (expected %s)", spec, IV_KIND_NAMES[op->kind],
                 IV_FORMS[op->kind]);
        return -1;
    }
    return targets ? parse_targets(op, targets, spec, err, n) : 0;
}

int intervene_parse(Intervention *iv, const char *spec, char *err, size_t n)
{
    memset(iv, 0, sizeof *iv);
    if (strlen(spec) >= IV_SPEC_LEN || !*spec) {
        snprintf(err, n, "'%s': expected a spec of 1 to %d characters", spec, IV_SPEC_LEN - 1);
        return -1;
    }
    snprintf(iv->text, sizeof iv->text, "%s", spec);
    char buf[IV_SPEC_LEN];
    snprintf(buf, sizeof buf, "%s", spec);
    char *s = buf;
    while (s) {
        char *next = split_at(s, '+');
        if (iv->n_ops >= IV_MAX_OPS) {
            snprintf(err, n, "'%s': at most %d operations joined by +", spec, IV_MAX_OPS);
            return -1;
        }
        if (!*s) {
            snprintf(err, n, "'%s': expected an operation on each side of +", spec);
            return -1;
        }
        if (parse_op(&iv->ops[iv->n_ops++], s, spec, err, n)) return -1;
        s = next;
    }
    return 0;
}

void intervene_default_targets(Intervention *iv, const IvTarget *t, int n)
{
    for (int i = 0; i < iv->n_ops; i++) {
        IvOp *op = &iv->ops[i];
        if (!is_head_edit(op->kind) || op->n_targets || n <= 0) continue;
        op->n_targets = n < IV_MAX_TARGETS ? n : IV_MAX_TARGETS;
        memcpy(op->targets, t, (size_t)op->n_targets * sizeof *t);
    }
}

int intervene_parse_heads(IvTarget *t, int *n, int cap, const char *s, char *err, size_t n_err)
{
    IvOp op = {.kind = IV_BLOCK_KEY};
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    if (parse_targets(&op, buf, s, err, n_err) || op.n_targets == 0) {
        snprintf(err, n_err, "--heads '%s': expected L.H[,L.H...] (layer and head indices)", s);
        return -1;
    }
    *n = op.n_targets < cap ? op.n_targets : cap;
    memcpy(t, op.targets, (size_t)*n * sizeof *t);
    return 0;
}

/* ---- application ---- */

/* dst (B, T') from src (B, T): dst[b, i] = src[b, map(i)] for i < T', with map(i) = i + shift
 * (drop_bos: +1; add_bos: -1, where i + shift < 0 leaves the slot to the caller). */
static void batch_shift(Batch *dst, int32_t *dorig, const Batch *src, const int32_t *sorig,
                        int shift)
{
    int B = src->B, T = src->T, Tn = dst->T;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < Tn; i++) {
            int j = i + shift;
            if (j < 0 || j >= T) continue;
            size_t d = (size_t)b * Tn + i, s = (size_t)b * T + j;
            dst->tokens[d] = src->tokens[s];
            dst->targets[d] = src->targets[s];
            dst->positions[d] = src->positions[s];
            dst->doc_ids[d] = src->doc_ids[s];
            dst->loss_mask[d] = src->loss_mask[s];
            dorig[d] = sorig[s];
        }
}

static void batch_copy_to(Batch *dst, int32_t **dorig, const Batch *src, const int32_t *sorig,
                          int T_new, int shift)
{
    batch_alloc(dst, src->B, T_new);
    *dorig = xcalloc((size_t)src->B * T_new, sizeof(int32_t));
    memcpy(dst->prefix_len, src->prefix_len, (size_t)src->B * sizeof(int32_t));
    batch_shift(dst, *dorig, src, sorig, shift);
}

#define FAIL(...) do { snprintf(err, n, __VA_ARGS__); return -1; } while (0)

/* drop_bos / add_bos: a new batch one shorter (the BOS removed, positions of its document
 * renumbered from 0) or of the same length (BOS prepended, the last position dropped). */
static int apply_bos(IvApplied *a, const IvOp *op, const char *spec, char *err, size_t n)
{
    Batch *cur = &a->batch;
    int B = cur->B, T = cur->T;
    int n_bos = 0;
    for (int b = 0; b < B; b++) n_bos += cur->tokens[(size_t)b * T] == TOK_BOS;
    if (op->kind == IV_DROP_BOS && n_bos < B)
        FAIL("'%s': drop_bos: expected a BOS at position 0 of every probe sequence, %d of %d have "
             "one (set probe.bos: true, or use add_bos)", spec, n_bos, B);
    if (op->kind == IV_ADD_BOS && n_bos > 0)
        FAIL("'%s': add_bos: the probe sequences already start with BOS (%d of %d; use drop_bos, "
             "or probe.bos: false)", spec, n_bos, B);
    if (op->kind == IV_DROP_BOS && T < 3)
        FAIL("'%s': drop_bos: the probe sequences are too short (%d tokens)", spec, T);
    Batch nb;
    int32_t *norig;
    int drop = op->kind == IV_DROP_BOS;
    batch_copy_to(&nb, &norig, cur, a->orig, drop ? T - 1 : T, drop ? 1 : -1);
    for (int b = 0; b < B; b++) {
        int32_t *pos = nb.positions + (size_t)b * nb.T, *doc = nb.doc_ids + (size_t)b * nb.T;
        const int32_t *sdoc = cur->doc_ids + (size_t)b * T;
        if (drop) {
            /* positions of the BOS's document move down by one: the text now starts at 0 */
            for (int i = 0; i < nb.T; i++)
                if (doc[i] == sdoc[0] && pos[i] > 0) pos[i]--;
            if (nb.prefix_len[b] > 0) nb.prefix_len[b]--;
            continue;
        }
        size_t r = (size_t)b * T;
        for (int i = 1; i < T; i++)
            if (doc[i] == doc[1]) pos[i]++;
        nb.tokens[r] = TOK_BOS;
        nb.targets[r] = cur->tokens[r];
        nb.positions[r] = 0;
        nb.doc_ids[r] = cur->doc_ids[r];
        nb.loss_mask[r] = cur->loss_mask[r];
        norig[r] = -1;
        if (nb.prefix_len[b] > 0 && nb.prefix_len[b] < T) nb.prefix_len[b]++;
    }
    batch_free(&a->batch);
    free(a->orig);
    a->batch = nb;
    a->orig = norig;
    return 0;
}

static int check_pos(int p, int T, const IvOp *op, const char *spec, char *err, size_t n)
{
    if (p >= 0 && p < T) return 0;
    FAIL("'%s': %s: position %d is outside the probe sequence (0..%d; probe.seq_len, after any "
         "drop_bos)", spec, IV_KIND_NAMES[op->kind], p, T - 1);
}

static int check_id(int id, const ModelConfig *mc, const IvOp *op, const char *spec, char *err,
                    size_t n)
{
    if (id >= 0 && id < mc->vocab_size) return 0;
    FAIL("'%s': %s: token id %d is outside the vocabulary (0..%d)", spec,
         IV_KIND_NAMES[op->kind], id, mc->vocab_size - 1);
}

static int apply_sequence_op(IvApplied *a, const IvOp *op, const ModelConfig *mc,
                             const char *spec, char *err, size_t n)
{
    Batch *bt = &a->batch;
    int B = bt->B, T = bt->T;
    switch (op->kind) {
    case IV_DROP_BOS: case IV_ADD_BOS:
        return apply_bos(a, op, spec, err, n);
    case IV_REPLACE_FIRST:
        if (check_id(op->id, mc, op, spec, err, n)) return -1;
        for (int b = 0; b < B; b++) bt->tokens[(size_t)b * T] = op->id;
        a->target_pos = 0;
        return 0;
    case IV_RANDOMIZE_FIRST: {
        if (op->pos > T) FAIL("'%s': randomize_first: %d tokens, the probe has %d", spec, op->pos, T);
        /* ordinary tokens only: the specials (BOS, PAD, ...) would be a different experiment */
        int V = mc->vocab_size < TOK_BOS ? mc->vocab_size : TOK_BOS;
        Rng rng;
        rng_seed(&rng, IV_RANDOM_SEED);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < op->pos; i++)
                bt->tokens[(size_t)b * T + i] = (int32_t)rng_below(&rng, (uint64_t)V);
        a->target_pos = 0;
        return 0;
    }
    case IV_FIXED_TOKEN:
        if (check_id(op->id, mc, op, spec, err, n) || check_pos(op->pos, T, op, spec, err, n))
            return -1;
        for (int b = 0; b < B; b++) bt->tokens[(size_t)b * T + op->pos] = op->id;
        a->target_pos = op->pos;
        return 0;
    case IV_POS_SWAP:
        if (check_pos(op->pos, T, op, spec, err, n) || check_pos(op->pos2, T, op, spec, err, n))
            return -1;
        for (int b = 0; b < B; b++) {
            int32_t *p = bt->positions + (size_t)b * T, t = p[op->pos];
            p[op->pos] = p[op->pos2];
            p[op->pos2] = t;
        }
        a->target_pos = op->pos;
        return 0;
    case IV_POS_SHIFT:
        for (int i = 0; i < B * T; i++) bt->positions[i] += op->pos;
        return 0;
    case IV_POS_AS:
        if (check_pos(op->pos, T, op, spec, err, n) || check_pos(op->pos2, T, op, spec, err, n))
            return -1;
        for (int b = 0; b < B; b++)
            bt->positions[(size_t)b * T + op->pos2] = bt->positions[(size_t)b * T + op->pos];
        a->target_pos = op->pos2;
        return 0;
    default:
        return 0;
    }
}

/* The (L, H, T) key weights and (L, T, C) value factors, made on first use. */
static void edits_alloc(IvApplied *a, const ModelConfig *mc)
{
    if (a->edits) return;
    int L = mc->n_layer, H = mc->n_head, T = a->batch.T, C = mc->d_model;
    a->edits = xcalloc((size_t)L, sizeof *a->edits);
    a->key_weight = xmalloc((size_t)L * H * T * sizeof(float));
    a->value_scale = xmalloc((size_t)L * T * C * sizeof(float));
    for (size_t i = 0; i < (size_t)L * H * T; i++) a->key_weight[i] = 1.0f;
    for (size_t i = 0; i < (size_t)L * T * C; i++) a->value_scale[i] = 1.0f;
}

/* Calls edit_head(l, h) for every head an operation targets (all of them without targets). */
static int for_targets(IvApplied *a, const IvOp *op, const ModelConfig *mc, const char *spec,
                       char *err, size_t n)
{
    int L = mc->n_layer, H = mc->n_head, T = a->batch.T, C = mc->d_model, D = C / H;
    for (int t = 0; t < (op->n_targets ? op->n_targets : 1); t++) {
        int l0 = 0, l1 = L - 1, h0 = 0, h1 = H - 1;
        if (op->n_targets) {
            const IvTarget *tg = &op->targets[t];
            if (tg->layer >= L || tg->head >= H)
                FAIL("'%s': %s: target layer %d head %d is outside the model (layers 0..%d, "
                     "heads 0..%d)", spec, IV_KIND_NAMES[op->kind], tg->layer, tg->head, L - 1,
                     H - 1);
            l0 = l1 = tg->layer;
            if (tg->head >= 0) h0 = h1 = tg->head;
            if (a->target_layer < 0) { a->target_layer = tg->layer; a->target_head = tg->head; }
        }
        for (int l = l0; l <= l1; l++) {
            LayerEdit *e = &a->edits[l];
            for (int h = h0; h <= h1; h++) {
                float *kw = a->key_weight + ((size_t)l * H + h) * T;
                float *vs = a->value_scale + ((size_t)l * T + op->pos) * C + (size_t)h * D;
                if (op->kind == IV_BLOCK_KEY) kw[op->pos] = 0.0f;
                if (op->kind == IV_SCALE_ATTN) kw[op->pos] *= op->factor;
                if (op->kind == IV_ZERO_VALUE) memset(vs, 0, (size_t)D * sizeof(float));
            }
            if (op->kind == IV_ZERO_VALUE) e->value_scale = a->value_scale + (size_t)l * T * C;
            else e->key_weight = a->key_weight + (size_t)l * H * T;
        }
    }
    return 0;
}

static int apply_model_op(IvApplied *a, const IvOp *op, const ModelConfig *mc, const char *spec,
                          char *err, size_t n)
{
    int T = a->batch.T;
    if (op->kind != IV_WINDOW && check_pos(op->pos, T, op, spec, err, n)) return -1;
    if (op->kind != IV_WINDOW) a->target_pos = op->pos;
    /* block_key on every head is the model's own mask rule, exactly as a config would set it */
    int as_mask = op->kind == IV_ISOLATE || op->kind == IV_RESET ||
                  (op->kind == IV_BLOCK_KEY && op->n_targets == 0);
    if (as_mask) {
        if (a->mask.n_edits >= MASK_MAX_EDITS)
            FAIL("'%s': at most %d mask edits (counting the model's own)", spec, MASK_MAX_EDITS);
        MaskEdit *e = &a->mask.edits[a->mask.n_edits++];
        e->kind = op->kind == IV_ISOLATE ? EDIT_ISOLATE : op->kind == IV_RESET ? EDIT_RESET
                                                                               : EDIT_BLOCK_KEY;
        e->pos = op->pos;
        return 0;
    }
    switch (op->kind) {
    case IV_WINDOW:
        a->mask.window = op->pos;
        return 0;
    case IV_PERTURB:
        if (op->pos >= T - 1)
            FAIL("'%s': perturb: position %d leaves no later position to spread to (0..%d)", spec,
                 op->pos, T - 2);
        if (op->id >= 0 && check_id(op->id, mc, op, spec, err, n)) return -1;
        a->has_perturb = 1;
        a->perturb_pos = op->pos;
        a->perturb_by_id = op->id >= 0;
        a->perturb_id = op->id;
        a->perturb_noise = op->factor;
        return 0;
    default:
        edits_alloc(a, mc);
        return for_targets(a, op, mc, spec, err, n);
    }
}

static int check_positions(IvApplied *a, const ModelConfig *mc, const char *spec, char *err,
                           size_t n)
{
    const Batch *b = &a->batch;
    for (int i = 0; i < b->B * b->T; i++) {
        int p = b->positions[i];
        if (mc->pos == POS_LEARNED && (p < 0 || p >= mc->max_seq_len))
            FAIL("'%s': position id %d at sequence %d, index %d has no row in the learned "
                 "position table (model.pos_encoding learned: 0..%d)", spec, p, i / b->T,
                 i % b->T, mc->max_seq_len - 1);
    }
    return 0;
}

int intervene_apply(IvApplied *a, const Intervention *iv, const Batch *base,
                    const ModelConfig *mc, char *err, size_t n)
{
    memset(a, 0, sizeof *a);
    a->target_pos = a->target_layer = a->target_head = -1;
    a->perturb_noise = NAN;
    a->mask = mc->mask;
    int32_t *ident = xcalloc((size_t)base->B * base->T, sizeof(int32_t));
    for (int i = 0; i < base->B * base->T; i++) ident[i] = i;
    batch_copy_to(&a->batch, &a->orig, base, ident, base->T, 0);
    free(ident);
    int rc = 0, pos_edit = 0;
    /* sequence edits first, in the order written; then everything indexing the result */
    for (int i = 0; rc == 0 && i < iv->n_ops; i++)
        if (is_sequence_edit(iv->ops[i].kind)) {
            rc = apply_sequence_op(a, &iv->ops[i], mc, iv->text, err, n);
            pos_edit |= is_position_edit(iv->ops[i].kind);
        }
    for (int i = 0; rc == 0 && i < iv->n_ops; i++)
        if (!is_sequence_edit(iv->ops[i].kind)) rc = apply_model_op(a, &iv->ops[i], mc, iv->text, err, n);
    if (rc == 0) rc = check_positions(a, mc, iv->text, err, n);
    if (rc == 0 && pos_edit && mc->pos == POS_NONE)
        snprintf(a->note, sizeof a->note, "%s: the model has no positional encoding "
                 "(model.pos_encoding none), so a position edit changes nothing", iv->text);
    if (rc) intervene_applied_free(a);
    return rc;
}

#undef FAIL

void intervene_applied_free(IvApplied *a)
{
    batch_free(&a->batch);
    free(a->orig);
    free(a->edits);
    free(a->key_weight);
    free(a->value_scale);
    memset(a, 0, sizeof *a);
}

/* ---- the loss over identical targets ---- */

void intervene_token_losses(double *ce, const float *logits, const Batch *b, int V)
{
    for (int i = 0; i < b->B * b->T; i++) {
        const float *z = logits + (size_t)i * V;
        double m = z[0];
        for (int v = 1; v < V; v++) m = z[v] > m ? z[v] : m;
        double s = 0.0;
        for (int v = 0; v < V; v++) s += exp((double)z[v] - m);
        int t = b->targets[i];
        ce[i] = t >= 0 && t < V ? m + log(s) - (double)z[t] : 0.0;
    }
}

int intervene_paired_loss(double *loss, double *base_loss, const double *ce, const IvApplied *a,
                          const Batch *base_batch, const double *base_ce)
{
    double s = 0.0, sb = 0.0;
    int cnt = 0;
    for (int i = 0; i < a->batch.B * a->batch.T; i++) {
        int o = a->orig[i];
        if (a->batch.loss_mask[i] == 0.0f || o < 0 || base_batch->loss_mask[o] == 0.0f) continue;
        s += ce[i];
        sb += base_ce[o];
        cnt++;
    }
    *loss = cnt ? s / cnt : NAN;
    *base_loss = cnt ? sb / cnt : NAN;
    return cnt;
}
