/* intervene_run.c: the baseline and each intervention through the probe on one checkpoint, and
 * what they are compared on (intervene_run.h). The probe batch, mask and head edits of an
 * intervention are swapped into the probe and the model for one run, then restored. */
#include "analysis/intervene_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/json.h"
#include "analysis/metrics.h"
#include "base/check.h"
#include "data/tokenizer.h"

static int uses_proxy(const Transformer *m)
{
    /* rows that do not sum to one are measured on the row-normalised proxy, as the probe does */
    return m->cfg.attention.normalizer == ATTN_SIGMOID || m->cfg.attention.normalizer == ATTN_SCALED;
}

/* Sink location per head from the probe's alpha, with n_q from the run's own mask. */
static void collect_locations(IvResult *r, const Probe *p, const Transformer *m)
{
    int L = p->L, H = p->H, T = p->T;
    float *n_q = xcalloc((size_t)T, sizeof(float)), *tmp = xcalloc((size_t)H * T, sizeof(float));
    metrics_alpha(tmp, n_q, p->trace.attn_probs[0], p->trace.allowed, p->batch.doc_ids,
                  uses_proxy(m), p->B, H, T);
    for (int l = 0; l < L; l++)
        metrics_sink_location(r->loc + l * H, r->loc_alpha + l * H, p->alpha + (size_t)l * H * T,
                              n_q, H, T);
    free(n_q);
    free(tmp);
}

/* Everything a run keeps from the probe's last (light) pass. */
static void collect(IvResult *r, const Probe *p, const Transformer *m, int target_pos)
{
    int L = p->L, H = p->H, T = p->T;
    r->T = T;
    r->alpha0 = xmalloc((size_t)L * H * sizeof(float));
    memcpy(r->alpha0, p->alpha0, (size_t)L * H * sizeof(float));
    r->alpha0_valid = p->alpha0_valid;
    for (int e = 0; e < 3; e++) r->sink_rate[e] = p->alpha0_valid ? p->sink_rate[e] : NAN;
    r->loc = xcalloc((size_t)L * H, sizeof(int));
    r->loc_alpha = xcalloc((size_t)L * H, sizeof(float));
    collect_locations(r, p, m);
    r->target_pos = target_pos;
    if (target_pos >= 0 && target_pos < T) {
        r->target_alpha = xmalloc((size_t)L * H * sizeof(float));
        for (int i = 0; i < L * H; i++) r->target_alpha[i] = p->alpha[(size_t)i * T + target_pos];
    }
    r->jacobian_norm = NAN;
}

/* Mean |A' - A| of sequence 0 over query/key pairs both runs have (mapped through orig): how
 * much an intervention changed each head; the top IV_TOP_HEADS are kept for the report. */
static void pick_top_heads(IvResult *r, const IvResult *base, const Probe *p, const int32_t *orig)
{
    int L = p->L, H = p->H, T = p->T, T0 = base->T;
    double best[IV_TOP_HEADS];
    for (int k = 0; k < IV_TOP_HEADS; k++) { best[k] = -1.0; r->top[k] = -1; }
    for (int lh = 0; lh < L * H; lh++) {
        const float *A = p->trace.attn_probs[lh / H] + (size_t)(lh % H) * T * T;
        const float *A0 = base->maps + (size_t)lh * T0 * T0;
        double d = 0.0;
        for (int i = 0; i < T; i++) {
            int oi = orig[i];
            if (oi < 0 || oi >= T0) continue;
            for (int j = 0; j < T; j++) {
                int oj = orig[j];
                if (oj >= 0 && oj < T0) d += fabs((double)A[(size_t)i * T + j] - A0[(size_t)oi * T0 + oj]);
            }
        }
        for (int k = 0; k < IV_TOP_HEADS; k++)
            if (d > best[k]) {
                for (int u = IV_TOP_HEADS - 1; u > k; u--) { best[u] = best[u - 1]; r->top[u] = r->top[u - 1]; }
                best[k] = d;
                r->top[k] = lh;
                break;
            }
    }
    r->maps = xcalloc((size_t)IV_TOP_HEADS * T * T, sizeof(float));
    for (int k = 0; k < IV_TOP_HEADS; k++)
        if (r->top[k] >= 0)
            memcpy(r->maps + (size_t)k * T * T,
                   p->trace.attn_probs[r->top[k] / H] + (size_t)(r->top[k] % H) * T * T,
                   (size_t)T * T * sizeof(float));
}

/* Runs the probe (light, or heavy for the spread) and keeps its JSON object. */
static void run_probe(IvResult *r, Probe *p, Transformer *m, int heavy)
{
    JsonWriter w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    probe_run(p, m, heavy, &w);
    jsonw_object_end(&w);
    size_t len;
    const char *text = jsonw_text(&w, &len);
    free(r->probe_json);
    r->probe_json = xmalloc(len + 1);
    memcpy(r->probe_json, text, len);
    r->probe_json[len] = 0;
    jsonw_free(&w);
}

/* The spread and Jacobian norm the heavy probe wrote. */
static void read_spread(IvResult *r, int L1)
{
    JsonDoc doc;
    char err[256];
    if (json_parse(&doc, r->probe_json, strlen(r->probe_json), "probe", 1, err, sizeof err)) return;
    const JsonValue *pr = json_get(doc.root, "probe");
    const JsonValue *sp = json_get(pr, "spread");
    r->jacobian_norm = json_num_or(json_get(pr, "jacobian_norm"), NAN);
    if (sp && json_len(sp) == L1) {
        r->spread = xmalloc((size_t)L1 * sizeof(float));
        for (int l = 0; l < L1; l++) r->spread[l] = (float)json_num_or(json_at(sp, l), NAN);
    }
    json_free(&doc);
}

/* One intervention: swap its inputs in, run, collect, restore. */
static int run_one(IvResult *r, const IvResult *base, const double *base_ce, Probe *p,
                   Transformer *m, const Intervention *iv, char *err, size_t n_err)
{
    IvApplied a;
    if (intervene_apply(&a, iv, &p->batch, &m->cfg, err, n_err)) return -1;
    snprintf(r->note, sizeof r->note, "%s", a.note);
    Batch saved = p->batch;
    int T0 = p->T;
    ProbeConfig cfg0 = p->cfg;
    MaskSpec mask0 = m->cfg.mask;
    p->batch = a.batch;
    p->T = a.batch.T;
    p->edit = a.edits;
    m->cfg.mask = a.mask;
    run_probe(r, p, m, 0);
    collect(r, p, m, a.target_pos);
    double *ce = xmalloc((size_t)p->B * p->T * sizeof(double));
    intervene_token_losses(ce, p->trace.logits->data, &p->batch, m->cfg.vocab_size);
    r->n_targets = intervene_paired_loss(&r->loss, &r->base_loss, ce, &a, &saved, base_ce);
    free(ce);
    pick_top_heads(r, base, p, a.orig);
    if (a.has_perturb) {
        p->cfg.perturb_pos = a.perturb_pos;
        if (!isnan(a.perturb_noise)) p->cfg.perturb_scale = a.perturb_noise;
        p->perturb_by_id = a.perturb_by_id;
        p->perturb_id = a.perturb_id;
        run_probe(r, p, m, 1);
        read_spread(r, p->L + 1);
    }
    p->batch = saved;
    p->T = T0;
    p->cfg = cfg0;
    p->edit = NULL;
    p->perturb_by_id = 0;
    m->cfg.mask = mask0;
    intervene_applied_free(&a);
    return 0;
}

/* MLM probe sets score nothing (no [MASK]): every 7th ordinary token from index 3 becomes [MASK]
 * with itself as target, the same in the baseline and every intervention, so there is a loss to
 * compare. Returns how many positions were masked. */
static int mlm_mask_probe(Batch *b, int V)
{
    int n = 0;
    if (TOK_MASK >= V) return 0;
    for (int i = 0; i < b->B * b->T; i++) {
        if (b->loss_mask[i] != 0.0f) return 0;   /* the probe already scores something */
    }
    for (int i = 0; i < b->B * b->T; i++) {
        if ((i % b->T) % 7 != 3 || b->tokens[i] >= TOK_BOS || b->doc_ids[i] < 0) continue;
        b->targets[i] = b->tokens[i];
        b->tokens[i] = TOK_MASK;
        b->loss_mask[i] = 1.0f;
        n++;
    }
    return n;
}

int intervene_run(IvCheckpoint *out, Probe *p, Transformer *m, const Intervention *ivs, int n,
                  char *err, size_t n_err)
{
    memset(out, 0, sizeof *out);
    int L = p->L, H = p->H, T = p->T, BT = p->B * p->T;
    out->L = L;
    out->H = H;
    out->causal = m->cfg.kind == MODEL_CAUSAL;
    out->eps0 = p->cfg.eps[0];
    /* the probe's own batch gets the MLM pattern for this analysis only: keep what it was */
    Batch kept;
    batch_alloc(&kept, p->B, p->T);
    memcpy(kept.tokens, p->batch.tokens, (size_t)BT * sizeof(int32_t));
    memcpy(kept.targets, p->batch.targets, (size_t)BT * sizeof(int32_t));
    memcpy(kept.loss_mask, p->batch.loss_mask, (size_t)BT * sizeof(float));
    if (m->cfg.kind == MODEL_BIDIRECTIONAL) out->mlm_masked = mlm_mask_probe(&p->batch, m->cfg.vocab_size);
    batch_alloc(&out->batch, p->B, p->T);
    memcpy(out->batch.tokens, p->batch.tokens, (size_t)BT * sizeof(int32_t));
    memcpy(out->batch.targets, p->batch.targets, (size_t)BT * sizeof(int32_t));
    memcpy(out->batch.positions, p->batch.positions, (size_t)BT * sizeof(int32_t));
    memcpy(out->batch.doc_ids, p->batch.doc_ids, (size_t)BT * sizeof(int32_t));
    memcpy(out->batch.loss_mask, p->batch.loss_mask, (size_t)BT * sizeof(float));
    memcpy(out->batch.prefix_len, p->batch.prefix_len, (size_t)p->B * sizeof(int32_t));
    IvResult *b = &out->base;
    p->edit = NULL;
    run_probe(b, p, m, 0);
    collect(b, p, m, -1);
    for (int k = 0; k < IV_TOP_HEADS; k++) b->top[k] = -1;
    b->maps = xmalloc((size_t)L * H * T * T * sizeof(float));
    for (int l = 0; l < L; l++)
        memcpy(b->maps + (size_t)l * H * T * T, p->trace.attn_probs[l], (size_t)H * T * T * sizeof(float));
    double *base_ce = xmalloc((size_t)BT * sizeof(double));
    intervene_token_losses(base_ce, p->trace.logits->data, &p->batch, m->cfg.vocab_size);
    double s = 0.0;
    for (int i = 0; i < BT; i++)
        if (p->batch.loss_mask[i] != 0.0f) { s += base_ce[i]; b->n_targets++; }
    b->loss = b->base_loss = b->n_targets ? s / b->n_targets : NAN;
    out->res = xcalloc((size_t)(n > 0 ? n : 1), sizeof(IvResult));
    out->n = n;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = run_one(&out->res[i], b, base_ce, p, m, &ivs[i], err, n_err);
    free(base_ce);
    memcpy(p->batch.tokens, kept.tokens, (size_t)BT * sizeof(int32_t));
    memcpy(p->batch.targets, kept.targets, (size_t)BT * sizeof(int32_t));
    memcpy(p->batch.loss_mask, kept.loss_mask, (size_t)BT * sizeof(float));
    batch_free(&kept);
    return rc;
}

static void result_free(IvResult *r)
{
    free(r->alpha0); free(r->loc); free(r->loc_alpha); free(r->target_alpha);
    free(r->spread); free(r->maps); free(r->probe_json);
    memset(r, 0, sizeof *r);
}

void intervene_checkpoint_free(IvCheckpoint *c)
{
    result_free(&c->base);
    if (c->batch.tokens) batch_free(&c->batch);
    for (int i = 0; i < c->n; i++) result_free(&c->res[i]);
    free(c->res);
    memset(c, 0, sizeof *c);
}
