/* probe.c: runs the fixed probe set through the training forward pass and logs every sink metric
 * (definitions in SCIENCE.md "Metrics", implemented in metrics.c). */
#include "analysis/probe.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis/metric_table.h"
#include "analysis/metrics.h"
#include "data/tokenizer.h"
#include "base/check.h"
#include "base/rng.h"

/* Fixed seeds: the probe's random directions never depend on training state, so a checkpoint
 * reproduces its probe line. */
#define PROBE_JACOBIAN_SEED 0x5ee4a11ULL
#define PROBE_PERTURB_SEED 0x9e27b1ULL

typedef struct ProbeScratch {
    float *n_q;                                       /* (L, T) |Q_k|, per layer */
    float *lh[12];                                    /* (L, H) per-head results */
    float *lt[4];                                     /* (L + 1) per-layer results */
    float *clean_hidden;                              /* (L+1, B, T, C) for the spread */
    float *delta;                                     /* (B, T, C) perturbation */
    float *seeds, *jac_sq;                            /* Jacobian seeds (samples, Bj, C) and
                                                         accumulators (Bj, T) */
    float *dy;                                        /* (threads, Bj, T, C) backward seeds: 0
                                                         but at position T-1 */
    float *jac_part;                                  /* (samples, Bj, T) each sample's term */
    float *maps;                                      /* (L, H, T, T) attention of sequence 0 */
    int *loc;                                         /* (L, H) sink location */
    float *by_class;                                  /* (2, H) one layer's active/dormant */
} ProbeScratch;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int probe_init(Probe *p, Transformer *m, const Dataset *ds, const ProbeConfig *cfg,
               char *err, size_t n_err)
{
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->bos = probe_config_bos(cfg, &ds->cfg);
    p->L = m->cfg.n_layer;
    p->H = m->cfg.n_head;
    p->T = cfg->seq_len;
    p->B = cfg->n_seq;
    batch_alloc(&p->batch, p->B, p->T);
    if (dataset_probe_set(ds, p->B, p->T, p->bos, &p->batch) != 0) {
        snprintf(err, n_err, "probe: the held-out split cannot fill %d sequences of %d tokens "
                 "(lower probe.n_seq or probe.seq_len, or raise data.val_fraction)", p->B, p->T);
        batch_free(&p->batch);
        return -1;
    }
    /* graph serves the traced pass and the perturbed pass: sized for the union of their traces
     * (embed_delta only needs to be set) */
    ForwardTrace want = {.keep_attn = 1, .keep_qkv = 1, .keep_hidden = 1,
                         .embed_delta = &(float){0}};
    graph_init(&p->graph, transformer_measure_arena(m, p->B, p->T, &want, 0),
               TRANSFORMER_MAX_NODES);
    int Bj = cfg->jacobian_seq < p->B ? cfg->jacobian_seq : p->B;
    int n_samples = cfg->jacobian_samples > 0 ? cfg->jacobian_samples : 1;
    ForwardTrace want_jac = {.keep_hidden = 1, .grad_input = 1};
    size_t jac_bytes = transformer_measure_arena(m, Bj > 0 ? Bj : 1, p->T, &want_jac, 1);
    /* the Jacobian's samples run one per thread (jacobian_metrics) */
    p->n_jac_graph = omp_get_max_threads() < n_samples ? omp_get_max_threads() : n_samples;
    p->jac_graph = xcalloc((size_t)p->n_jac_graph, sizeof(Graph));
    for (int i = 0; i < p->n_jac_graph; i++)
        graph_init(&p->jac_graph[i], jac_bytes, TRANSFORMER_MAX_NODES);
    int L = p->L, H = p->H, T = p->T, C = m->cfg.d_model;
    size_t BTC = (size_t)p->B * T * C;
    ProbeScratch *s = xcalloc(1, sizeof *s);
    s->n_q = xcalloc((size_t)L * T, sizeof(float));
    for (int i = 0; i < 12; i++) s->lh[i] = xcalloc((size_t)L * H, sizeof(float));
    for (int i = 0; i < 4; i++) s->lt[i] = xcalloc((size_t)L + 1, sizeof(float));
    s->clean_hidden = xcalloc((size_t)(L + 1) * BTC, sizeof(float));
    s->delta = xcalloc(BTC, sizeof(float));
    s->seeds = xcalloc((size_t)n_samples * (Bj > 0 ? Bj : 1) * C, sizeof(float));
    s->dy = xcalloc((size_t)p->n_jac_graph * (Bj > 0 ? Bj : 1) * T * C, sizeof(float));
    s->jac_sq = xcalloc((size_t)(Bj > 0 ? Bj : 1) * T, sizeof(float));
    s->jac_part = xcalloc((size_t)n_samples * (Bj > 0 ? Bj : 1) * T, sizeof(float));
    s->maps = xcalloc((size_t)L * H * T * T, sizeof(float));
    s->loc = xcalloc((size_t)L * H, sizeof(int));
    s->by_class = xcalloc((size_t)2 * H, sizeof(float));
    for (int i = 0; i < p->B * T; i++) p->has_classes |= p->batch.query_class[i] != 0;
    p->alpha = xcalloc((size_t)L * H * T, sizeof(float));
    p->alpha0 = xcalloc((size_t)L * H, sizeof(float));
    p->value_norms = xcalloc((size_t)L * H * T, sizeof(float));
    p->scratch = s;
    return 0;
}

void probe_free(Probe *p)
{
    ProbeScratch *s = p->scratch;
    if (s) {
        free(s->n_q);
        for (int i = 0; i < 12; i++) free(s->lh[i]);
        for (int i = 0; i < 4; i++) free(s->lt[i]);
        free(s->clean_hidden); free(s->delta); free(s->dy); free(s->seeds); free(s->jac_sq);
        free(s->jac_part);
        free(s->maps);
        free(s->loc);
        free(s->by_class);
        free(s);
    }
    free(p->alpha);
    free(p->alpha0);
    free(p->value_norms);
    graph_free(&p->graph);
    for (int i = 0; i < p->n_jac_graph; i++) graph_free(&p->jac_graph[i]);
    free(p->jac_graph);
    batch_free(&p->batch);
    memset(p, 0, sizeof *p);
}

double probe_uniform_alpha0(const Probe *p)
{
    /* alpha_0 when every row is uniform over its allowed keys: mean over queries that see key 0
     * of 1 / (number of keys they see), per sequence, then averaged */
    const uint8_t *allowed = p->trace.allowed;
    if (!allowed) return 0.0;
    int T = p->T;
    double total = 0.0;
    int n_seq = 0;
    for (int b = 0; b < p->B; b++) {
        double sum = 0.0;
        int n = 0;
        for (int i = 0; i < T; i++) {
            if (p->batch.doc_ids[b * T + i] < 0) continue;
            const uint8_t *row = allowed + ((size_t)b * T + i) * T;
            if (!row[0]) continue;
            int keys = 0;
            for (int j = 0; j < T; j++) keys += row[j];
            sum += 1.0 / keys;
            n++;
        }
        if (n) { total += sum / n; n_seq++; }
    }
    return n_seq ? total / n_seq : 0.0;
}

/* ---- the light metrics: every probe ---- */

/* A per-head metric (L, H) under its table name; the table must agree that it is per head. */
static void write_LH(JsonWriter *w, MetricId id, const float *x, int L, int H)
{
    SL_CHECK(metric_def(id)->shape == METRIC_SHAPE_HEAD, "metric %s is not [L][H] in the table", metric_name(id));
    int shape[2] = {L, H};
    jsonw_key_floats(w, metric_name(id), x, shape, 2);
}

/* Active/dormant heads (Guo et al. 2024): attention on BOS from class-1 queries (a trigger,
 * whose target is a copy) vs class-0 queries, per head, and the probe loss by class. */
static void class_metrics(Probe *p, Transformer *m, JsonWriter *w, int proxy)
{
    ProbeScratch *s = p->scratch;
    const ForwardTrace *tr = &p->trace;
    const Batch *bt = &p->batch;
    int L = p->L, H = p->H, T = p->T, B = p->B, n[2];
    float *active = s->lh[10], *dormant = s->lh[11];
    for (int l = 0; l < L; l++) {
        metrics_alpha_bos_by_class(s->by_class, n, tr->attn_probs[l], tr->allowed, bt->doc_ids,
                                   bt->tokens, bt->query_class, 2, TOK_BOS, proxy, B, H, T);
        if (!n[0] || !n[1]) return;   /* no BOS in the probe, or one class missing */
        memcpy(dormant + l * H, s->by_class, (size_t)H * sizeof(float));
        memcpy(active + l * H, s->by_class + H, (size_t)H * sizeof(float));
    }
    write_LH(w, METRIC_ALPHA_BOS_ACTIVE, active, L, H);
    write_LH(w, METRIC_ALPHA_BOS_DORMANT, dormant, L, H);
    float loss[2];
    metrics_loss_by_class(loss, n, tr->logits->data, bt->targets, bt->loss_mask, bt->query_class,
                          2, B, T, m->cfg.vocab_size);
    if (n[0]) jsonw_key_number(w, metric_name(METRIC_LOSS_MARKOV), loss[0]);
    if (n[1]) jsonw_key_number(w, metric_name(METRIC_LOSS_COPY), loss[1]);
}

static void light_metrics(Probe *p, Transformer *m, JsonWriter *w)
{
    ProbeScratch *s = p->scratch;
    const ForwardTrace *tr = &p->trace;
    int L = p->L, H = p->H, T = p->T, B = p->B, D = m->cfg.d_model / H;
    const int32_t *doc = p->batch.doc_ids;
    /* sigmoid and relu rows do not sum to one: they are measured on the row-normalised proxy
     * (scaled rows were divided by their scale in probe_run, keeping a learned sink's share) */
    int proxy = m->cfg.attention.normalizer == ATTN_SIGMOID ||
                m->cfg.attention.normalizer == ATTN_RELU;
    int *loc = s->loc;
    float *loc_alpha = s->lh[0], *vratio = s->lh[1], *kratio = s->lh[2], *cosq = s->lh[3];
    float *normprod = s->lh[4], *ent = s->lh[5], *ent_n = s->lh[6];
    float *bos_alpha = s->lh[7], *last_alpha = s->lh[8], *sink_alpha = s->lh[9];
    float *massive = s->lt[0], *top_median = s->lt[1];
    int has_bos = 0, has_last = m->cfg.kind == MODEL_BIDIRECTIONAL;
    int has_sink_mass = m->cfg.attention.sink != SINK_NONE ||
                        m->cfg.attention.normalizer == ATTN_SOFTMAX1;
    /* layers are independent and write disjoint outputs: one per thread (the same arithmetic
     * whatever the thread count) */
    #pragma omp parallel for schedule(static) reduction(|:has_bos) if (L > 1)
    for (int l = 0; l < L; l++) {
        const float *A = tr->attn_probs[l];
        float *n_q = s->n_q + (size_t)l * T;
        metrics_alpha(p->alpha + (size_t)l * H * T, n_q, A, tr->allowed, doc, proxy, B, H, T);
        for (int h = 0; h < H; h++) p->alpha0[l * H + h] = p->alpha[((size_t)l * H + h) * T];
        metrics_sink_location(loc + l * H, loc_alpha + l * H, p->alpha + (size_t)l * H * T, n_q, H, T);
        if (metrics_alpha_bos(bos_alpha + l * H, A, tr->allowed, doc, p->batch.tokens, TOK_BOS,
                              proxy, B, H, T) > 0)
            has_bos = 1;
        if (has_last) metrics_alpha_last(last_alpha + l * H, A, tr->allowed, doc, proxy, B, H, T);
        if (has_sink_mass) metrics_sink_mass(sink_alpha + l * H, tr->sink_mass[l], doc, B, H, T);
        metrics_norm_ratio(vratio + l * H, p->value_norms + (size_t)l * H * T, tr->v[l]->data, doc, B, T, H, D);
        metrics_norm_ratio(kratio + l * H, NULL, tr->k[l]->data, doc, B, T, H, D);
        metrics_qk0(cosq + l * H, normprod + l * H, tr->q[l]->data, tr->k[l]->data, tr->allowed,
                    doc, B, T, H, D);
        metrics_entropy(ent + l * H, ent_n + l * H, A, tr->allowed, doc, proxy, B, H, T);
        metrics_massive(&massive[l], &top_median[l], NULL, NULL, tr->hidden[l + 1]->data, doc, B,
                        T, m->cfg.d_model);
    }
    int n = L * H;
    double mx = 0.0, mean = 0.0;
    for (int i = 0; i < n; i++) {
        mx = p->alpha0[i] > mx ? p->alpha0[i] : mx;
        mean += p->alpha0[i];
    }
    mean /= n;
    if (p->loss_positions > 0) jsonw_key_number(w, metric_name(METRIC_LOSS), p->loss);
    /* alpha_0 needs queries that see key 0; when a mask hides it from most of them (an ablation,
     * a window), it says nothing about sinks and is left out (the sink location rule, T/4) */
    p->alpha0_valid = s->n_q[0] >= T / 4.0f;
    if (p->alpha0_valid) {
        write_LH(w, METRIC_ALPHA0, p->alpha0, L, H);
        jsonw_key_object_begin(w, metric_name(METRIC_SINK_RATE));
        for (int e = 0; e < 3; e++) {
            char key[32];
            snprintf(key, sizeof key, "%g", (double)p->cfg.eps[e]);
            p->sink_rate[e] = metrics_sink_rate(p->alpha, n, T, p->cfg.eps[e]);
            jsonw_key_number(w, key, p->sink_rate[e]);
        }
        jsonw_object_end(w);
        jsonw_key_object_begin(w, metric_name(METRIC_SINK_RATE_GU));
        for (int e = 0; e < 3; e++) {
            char key[32];
            snprintf(key, sizeof key, "%g", (double)p->cfg.eps[e]);
            double pct = 0.0;
            for (int l = 0; l < L; l++)
                pct += metrics_sink_rate_gu(tr->attn_probs[l], tr->allowed, doc, proxy,
                                            p->cfg.eps[e], B, H, T);
            jsonw_key_number(w, key, pct / L);
        }
        jsonw_object_end(w);
        jsonw_key_number(w, metric_name(METRIC_ALPHA0_MAX), mx);
        jsonw_key_number(w, metric_name(METRIC_ALPHA0_MEAN), mean);
        jsonw_key_number(w, metric_name(METRIC_UNIFORM_ALPHA0), probe_uniform_alpha0(p));
    }
    if (has_bos) write_LH(w, METRIC_ALPHA_BOS, bos_alpha, L, H);
    if (has_last) write_LH(w, METRIC_ALPHA_LAST, last_alpha, L, H);
    if (has_sink_mass) write_LH(w, METRIC_ALPHA_LEARNED_SINK, sink_alpha, L, H);
    int shape[2] = {L, H};
    jsonw_key_ints(w, metric_name(METRIC_SINK_LOCATION), loc, shape, 2);
    write_LH(w, METRIC_SINK_LOCATION_ALPHA, loc_alpha, L, H);
    write_LH(w, METRIC_VALUE_NORM_RATIO, vratio, L, H);
    write_LH(w, METRIC_KEY_NORM_RATIO, kratio, L, H);
    write_LH(w, METRIC_COS_QK0, cosq, L, H);
    write_LH(w, METRIC_QK0_NORMPROD, normprod, L, H);
    write_LH(w, METRIC_ENTROPY, ent, L, H);
    write_LH(w, METRIC_ENTROPY_NORM, ent_n, L, H);
    jsonw_key_floats(w, metric_name(METRIC_MASSIVE_RATIO), massive, &L, 1);
    jsonw_key_floats(w, metric_name(METRIC_MASSIVE_TOP_MEDIAN), top_median, &L, 1);
    if (p->has_classes) class_metrics(p, m, w, proxy);
}

/* ---- the heavy metrics: at checkpoints and every probe.heavy_every steps ---- */

static void spectrum_metrics(Probe *p, Transformer *m, JsonWriter *w)
{
    ProbeScratch *s = p->scratch;
    const ForwardTrace *tr = &p->trace;
    int L = p->L, H = p->H, T = p->T, D = m->cfg.d_model / H;
    float *mean = s->lh[0], *var = s->lh[1], *smean = s->lh[2], *svar = s->lh[3];
    float *share0 = s->lh[4];
    int ok = 1;
    for (int l = 0; l < L; l++) {
        const BlockParams *bp = &m->blocks[l];
        ok &= metrics_qk_spectrum(mean + l * H, var + l * H, smean + l * H, svar + l * H, NULL,
                                  NULL, bp->wq->data, bp->wk->data, NULL, H, D) == 0;
        /* norm-based attention: the share of key 0, alpha-style average (Kobayashi et al.) */
        float *share = xcalloc((size_t)H * T, sizeof(float));
        metrics_norm_attention(share, tr->attn_probs[l], tr->v[l]->data, bp->wo->data,
                               tr->allowed, p->batch.doc_ids, p->B, H, T, D);
        for (int h = 0; h < H; h++) share0[l * H + h] = share[(size_t)h * T];
        free(share);
    }
    if (ok) {
        write_LH(w, METRIC_QK_EIG_MEAN, mean, L, H);
        write_LH(w, METRIC_QK_EIG_VAR, var, L, H);
        write_LH(w, METRIC_QK_SYM_MEAN, smean, L, H);
        write_LH(w, METRIC_QK_SYM_VAR, svar, L, H);
    }
    write_LH(w, METRIC_NORM_ATTN0, share0, L, H);
}

static void collapse_metrics(Probe *p, Transformer *m, JsonWriter *w)
{
    ProbeScratch *s = p->scratch;
    int L1 = p->L + 1, C = m->cfg.d_model;
    float *cosm = s->lt[0], *resid = s->lt[1], *erank = s->lt[2];
    int ok = 1;
    for (int l = 0; l < L1; l++)
        ok &= metrics_collapse(&cosm[l], &resid[l], &erank[l], p->trace.hidden[l]->data,
                               p->batch.doc_ids, p->B, p->T, C) == 0;
    if (!ok) return;
    jsonw_key_floats(w, metric_name(METRIC_COLLAPSE_COS), cosm, &L1, 1);
    jsonw_key_floats(w, metric_name(METRIC_COLLAPSE_RESID), resid, &L1, 1);
    jsonw_key_floats(w, metric_name(METRIC_EFF_RANK), erank, &L1, 1);
}

/* Over-mixing (Barbero et al.): noise of norm perturb_scale * ||h^0_i|| on the input embedding of
 * position i = perturb_pos, then per layer the relative change of the later positions. Runs a
 * second forward pass, so it comes after everything that reads the clean trace. */
static void spread_metrics(Probe *p, Transformer *m, JsonWriter *w)
{
    ProbeScratch *s = p->scratch;
    int L1 = p->L + 1, B = p->B, T = p->T, C = m->cfg.d_model, pos = p->cfg.perturb_pos;
    if (pos < 0 || pos >= T - 1) return;
    size_t BTC = (size_t)B * T * C;
    for (int l = 0; l < L1; l++)
        memcpy(s->clean_hidden + l * BTC, p->trace.hidden[l]->data, BTC * sizeof(float));
    Rng rng;
    rng_seed(&rng, PROBE_PERTURB_SEED);
    memset(s->delta, 0, BTC * sizeof(float));
    for (int b = 0; b < B && p->perturb_by_id; b++) {
        /* a token swap is the difference of the two token embeddings at that position */
        const float *e_new = m->wte->data + (size_t)p->perturb_id * C;
        const float *e_old = m->wte->data + (size_t)p->batch.tokens[b * T + pos] * C;
        float *d = s->delta + ((size_t)b * T + pos) * C;
        for (int c = 0; c < C; c++) d[c] = e_new[c] - e_old[c];
    }
    for (int b = 0; b < B && !p->perturb_by_id; b++) {
        const float *h0 = s->clean_hidden + ((size_t)b * T + pos) * C;
        float *d = s->delta + ((size_t)b * T + pos) * C;
        double hn = 0.0, dn = 0.0;
        for (int c = 0; c < C; c++) {
            d[c] = rng_normal(&rng);
            hn += (double)h0[c] * h0[c];
            dn += (double)d[c] * d[c];
        }
        float scale = (float)(p->cfg.perturb_scale * sqrt(hn) / (sqrt(dn) + 1e-30));
        for (int c = 0; c < C; c++) d[c] *= scale;
    }
    ForwardTrace tr = {.keep_hidden = 1, .embed_delta = s->delta, .edits = p->edit};
    graph_reset(&p->graph);
    p->graph.record = 0;
    transformer_forward(m, &p->graph, &p->batch, &tr);
    float *spread = s->lt[3];
    for (int l = 0; l < L1; l++)
        spread[l] = metrics_perturb_spread(NULL, s->clean_hidden + l * BTC, tr.hidden[l]->data,
                                           p->batch.doc_ids, pos, B, T, C);
    jsonw_key_floats(w, metric_name(METRIC_SPREAD), spread, &L1, 1);
    jsonw_key_int(w, metric_name(METRIC_SPREAD_POS), pos);
}

/* One Jacobian sample on graph g with model m (the probe's model or a replica of it): forward on
 * sub, backward from the last position's hidden state seeded with u (Bj, C) through dy (Bj, T, C,
 * zero but at position T-1), and each position's term ||J^T u||^2 / n_samples into part (Bj, T). */
static void jacobian_sample(Probe *p, Transformer *m, Graph *g, const Batch *sub, const float *u,
                            float *dy, float *part)
{
    int T = p->T, C = m->cfg.d_model, L = p->L, n_samples = p->cfg.jacobian_samples;
    for (int b = 0; b < sub->B; b++)
        memcpy(dy + ((size_t)b * T + T - 1) * C, u + (size_t)b * C, (size_t)C * sizeof(float));
    graph_reset(g);
    g->record = 1;
    ForwardTrace tr = {.keep_hidden = 1, .grad_input = 1, .edits = p->edit};
    transformer_forward(m, g, sub, &tr);
    graph_backward_seeded(g, tr.hidden[L], dy);
    const float *g0 = tr.hidden[0]->grad;
    for (int b = 0; b < sub->B; b++)
        for (int i = 0; i < T; i++) {
            double sq = 0.0;
            for (int c = 0; c < C; c++) {
                double v = g0[((size_t)b * T + i) * C + c];
                sq += v * v;
            }
            part[b * T + i] = (float)(sq / n_samples);
        }
}

/* ||d h_{T-1}^L / d h_i^0||_F for every input position i, estimated as sqrt(E ||J^T u||^2) over
 * Gaussian u (Hutchinson): one backward pass per sample gives all positions at once. The samples
 * run one per thread, each on its own graph and (beyond the first thread) a replica of the model
 * for the parameter gradients backward writes; their seeds are drawn up front in sample order and
 * their terms summed in sample order, so the result does not depend on the thread count. */
static void jacobian_metrics(Probe *p, Transformer *m, JsonWriter *w)
{
    ProbeScratch *s = p->scratch;
    int Bj = p->cfg.jacobian_seq < p->B ? p->cfg.jacobian_seq : p->B;
    int n_samples = p->cfg.jacobian_samples, T = p->T, C = m->cfg.d_model;
    if (Bj < 1 || n_samples < 1) return;
    Batch sub = p->batch;
    sub.B = Bj;
    size_t seed_size = (size_t)Bj * C, part_size = (size_t)Bj * T;
    Rng rng;
    rng_seed(&rng, PROBE_JACOBIAN_SEED);
    for (size_t i = 0; i < (size_t)n_samples * seed_size; i++) s->seeds[i] = rng_normal(&rng);
    int n_threads = p->n_jac_graph;
    Transformer *replica = n_threads > 1 ? xcalloc((size_t)n_threads - 1, sizeof(Transformer)) : NULL;
    for (int t = 1; t < n_threads; t++) transformer_replica(&replica[t - 1], m);
    #pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1)
    for (int k = 0; k < n_samples; k++) {
        int t = omp_get_thread_num();
        jacobian_sample(p, t == 0 ? m : &replica[t - 1], &p->jac_graph[t], &sub,
                        s->seeds + k * seed_size, s->dy + (size_t)t * Bj * T * C,
                        s->jac_part + k * part_size);
    }
    for (int t = 1; t < n_threads; t++) transformer_free(&replica[t - 1]);
    free(replica);
    memset(s->jac_sq, 0, part_size * sizeof(float));
    for (int k = 0; k < n_samples; k++)
        for (size_t i = 0; i < part_size; i++) s->jac_sq[i] += s->jac_part[k * part_size + i];
    float *by_pos = xcalloc((size_t)T, sizeof(float));
    for (int i = 0; i < T; i++) {
        double acc = 0.0;
        for (int b = 0; b < Bj; b++) acc += sqrt(s->jac_sq[b * T + i]);
        by_pos[i] = (float)(acc / Bj);
    }
    int pos = p->cfg.perturb_pos >= 0 && p->cfg.perturb_pos < T ? p->cfg.perturb_pos : 0;
    jsonw_key_number(w, metric_name(METRIC_JACOBIAN_NORM), by_pos[pos]);
    jsonw_key_floats(w, metric_name(METRIC_JACOBIAN_BY_POS), by_pos, &T, 1);
    free(by_pos);
    /* the Jacobian pass wrote into parameter gradients: leave them clean for the next step */
    params_zero_grad(&m->params);
}

/* attn_probs (B, H, T, T) and sink_mass (B, H, T) of every layer divided by scale (in place:
 * these buffers are the probe's own copies). */
static void probe_unscale(ForwardTrace *tr, float scale, int L, size_t BHT, int T)
{
    for (int l = 0; l < L; l++) {
        for (size_t i = 0; i < BHT * (size_t)T; i++) tr->attn_probs[l][i] /= scale;
        for (size_t i = 0; i < BHT; i++) tr->sink_mass[l][i] /= scale;
    }
}

void probe_run(Probe *p, Transformer *m, int heavy, JsonWriter *w)
{
    double t0 = now_seconds();
    ProbeScratch *s = p->scratch;
    graph_reset(&p->graph);
    p->graph.record = 0;
    memset(&p->trace, 0, sizeof p->trace);
    p->trace.keep_attn = p->trace.keep_qkv = p->trace.keep_hidden = 1;
    p->trace.edits = p->edit;
    Tensor *loss = transformer_forward(m, &p->graph, &p->batch, &p->trace);
    p->loss = loss->data[0];
    /* scaled attention: a row and its learned sink sum to `scale`; dividing by it makes every
     * metric read shares as for softmax, so scale 1 reports exactly what softmax does */
    if (m->cfg.attention.normalizer == ATTN_SCALED)
        probe_unscale(&p->trace, m->cfg.attention.scale, p->L, (size_t)p->B * p->H * p->T, p->T);
    p->loss_positions = 0;
    for (int i = 0; i < p->B * p->T; i++) p->loss_positions += p->batch.loss_mask[i] != 0.0f;
    /* sequence 0's attention maps, kept for probe_write_maps beyond later passes */
    size_t TT = (size_t)p->T * p->T;
    for (int l = 0; l < p->L; l++)
        for (int h = 0; h < p->H; h++)
            memcpy(s->maps + ((size_t)l * p->H + h) * TT, p->trace.attn_probs[l] + (size_t)h * TT,
                   TT * sizeof(float));
    jsonw_key_object_begin(w, "probe");
    light_metrics(p, m, w);
    if (heavy) {
        spectrum_metrics(p, m, w);
        collapse_metrics(p, m, w);
        spread_metrics(p, m, w);
        jacobian_metrics(p, m, w);
    }
    jsonw_object_end(w);
    p->seconds += now_seconds() - t0;
}

int probe_write_maps(const Probe *p, const char *path, int64_t step, char *err, size_t n_err)
{
    const ProbeScratch *s = p->scratch;
    int L = p->L, H = p->H, T = p->T;
    JsonWriter w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key_int(&w, "step", step);
    jsonw_key_int(&w, "T", T);
    jsonw_key_int(&w, "n_layer", L);
    jsonw_key_int(&w, "n_head", H);
    jsonw_key_ints(&w, "tokens", p->batch.tokens, &T, 1);
    char *text = xmalloc((size_t)T * 8 + 1);
    tok_decode(p->batch.tokens, (size_t)T, text, (size_t)T * 8 + 1);
    jsonw_key_string(&w, "text", text);
    free(text);
    int maps_shape[4] = {L, H, T, T}, lht[3] = {L, H, T};
    jsonw_key_floats(&w, "attn", s->maps, maps_shape, 4);
    jsonw_key_floats(&w, "value_norm", p->value_norms, lht, 3);
    jsonw_key_floats(&w, "alpha", p->alpha, lht, 3);
    jsonw_object_end(&w);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (!f) {
        snprintf(err, n_err, "%s: cannot write", tmp);
    } else {
        rc = jsonw_write_line(&w, f);
        if (fclose(f) != 0) rc = -1;
        if (rc == 0 && rename(tmp, path) != 0) rc = -1;
        if (rc != 0) snprintf(err, n_err, "%s: write failed", path);
    }
    jsonw_free(&w);
    return rc;
}
