/* metric_table.c: every probe metric's name, shape, meaning and chart (metric_table.h). Entries
 * are indexed by MetricId through designated initialisers, so the order here is free; the order
 * of the ids is the order of the README rows and of the report's mechanics charts. */
#include "analysis/metric_table.h"

#include <string.h>

static const MetricDef TABLE[METRIC_COUNT] = {
    [METRIC_LOSS] = { "loss", METRIC_SHAPE_SCALAR, METRIC_TIER_LIGHT,
        "the model's loss on the probe set (absent for bidirectional models, whose probe masks nothing)",
        METRIC_CHART_MECHANICS, "Loss on the probe set", "loss (nats / token)",
        "The model's mean loss on the fixed probe sequences, through the same forward pass as training: "
        "the same text at every step, so it moves only with the model.", 0, 0 },
    [METRIC_ALPHA0] = { "alpha0", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "alpha_0: mean attention key 0 receives from the queries allowed to see it (averaged over probe "
        "sequences first); absent when a mask hides key 0 from most queries",
        METRIC_CHART_HEADS, "α₀ per head over training", NULL, NULL, 0, 0 },
    [METRIC_SINK_RATE] = { "sink_rate", METRIC_SHAPE_EPS, METRIC_TIER_LIGHT,
        "sinklab's sink rate: the fraction (0..1) of (layer, head) with alpha_0 > eps, one member per "
        "`probe.eps`; not Gu et al.'s metric (below); absent with alpha0",
        METRIC_CHART_SINK_RATE, "Sink rate vs step", NULL, NULL, 0, 0 },
    [METRIC_SINK_RATE_GU] = { "sink_rate_gu", METRIC_SHAPE_EPS, METRIC_TIER_LIGHT,
        "Gu et al.'s Sink_1^eps exactly as their code computes it, in percent, one member per "
        "`probe.eps` (below); absent with alpha0",
        METRIC_CHART_SINK_RATE, "Sink rate vs step", NULL, NULL, 0, 0 },
    [METRIC_ALPHA0_MAX] = { "alpha0_max", METRIC_SHAPE_SCALAR, METRIC_TIER_LIGHT,
        "the strongest head's alpha_0", METRIC_CHART_ALPHA0_SUMMARY, "α₀ across heads", NULL, NULL, 0, 0 },
    [METRIC_ALPHA0_MEAN] = { "alpha0_mean", METRIC_SHAPE_SCALAR, METRIC_TIER_LIGHT,
        "alpha_0 averaged over all heads", METRIC_CHART_ALPHA0_SUMMARY, "α₀ across heads", NULL, NULL, 0, 0 },
    [METRIC_UNIFORM_ALPHA0] = { "uniform_alpha0", METRIC_SHAPE_SCALAR, METRIC_TIER_LIGHT,
        "alpha_0 of uniform attention under the probe's mask (H_T/T = 0.074 causal at T = 64): an untrained "
        "model sits there", METRIC_CHART_ALPHA0_SUMMARY, "α₀ across heads", NULL, NULL, 0, 0 },
    [METRIC_SINK_LOCATION] = { "sink_location", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "argmax_k alpha_k over keys that at least T/4 queries see", METRIC_CHART_ONSET_CELL,
        "Onset step per head", NULL, NULL, 0, 0 },
    [METRIC_SINK_LOCATION_ALPHA] = { "sink_location_alpha", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "alpha_k at the sink location", METRIC_CHART_ONSET_CELL, "Onset step per head", NULL, NULL, 0, 0 },
    [METRIC_ALPHA_BOS] = { "alpha_bos", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "attention on BOS tokens wherever they are (when the probe has BOS)",
        METRIC_CHART_MECHANICS, "Attention on BOS", "α on BOS",
        "Mean attention that BOS tokens receive, per layer (mean over heads). Present because this "
        "probe has BOS: compare with α₀ to see whether the sink sits on BOS or on the first data token.", 0, 0 },
    [METRIC_ALPHA_LAST] = { "alpha_last", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "attention on the last position (bidirectional models)",
        METRIC_CHART_MECHANICS, "Attention on the last position", "α on last position",
        "Mean attention that the last position receives from the queries allowed to see it, per layer "
        "(mean over heads). Logged for bidirectional models, where the end of the sequence can hold a "
        "second sink.", 0, 0 },
    [METRIC_ALPHA_LEARNED_SINK] = { "alpha_learned_sink", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "mass on learned sinks (logit, k/kv bias, sink token, softmax1's +1), never counted in alpha_0",
        METRIC_CHART_MECHANICS, "Attention on the learned sink", "α on learned sink",
        "Attention mass that goes to the learned sink (softmax1 / sink logit, k_bias, kv_bias, sink token) "
        "instead of any data key, per layer (mean over heads). It replaces α₀ as the place a head parks attention.", 0, 0 },
    [METRIC_VALUE_NORM_RATIO] = { "value_norm_ratio", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "the waiver: ||v_0|| / mean_j ||v_j||",
        METRIC_CHART_MECHANICS, "Value norm of key 0", "‖v₀‖ / mean ‖vⱼ‖",
        "Norm of key 0's value vector over the mean value norm, per layer (mean over heads). Well below 1: "
        "the sink is a near no-op key, so a head can attend to it without writing much (the 'waiver').", 0, 0 },
    [METRIC_KEY_NORM_RATIO] = { "key_norm_ratio", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "||k_0|| / mean_j ||k_j||",
        METRIC_CHART_MECHANICS, "Key norm of key 0", "‖k₀‖ / mean ‖kⱼ‖",
        "Norm of key 0's key vector over the mean key norm, per layer. Gu et al. find the sink is driven by "
        "the query–key angle rather than by norms: read it together with cos(q, k₀).", 0, 0 },
    [METRIC_COS_QK0] = { "cos_qk0", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "mean cos(q_i, k_0) (the sink is driven by the cosine)",
        METRIC_CHART_MECHANICS, "Query–key-0 alignment", "mean cos(qᵢ, k₀)",
        "Mean cosine between the queries and key 0's key, per layer (mean over heads). Queries turning "
        "towards k₀ is the mechanism by which a sink forms.", 0, 0 },
    [METRIC_QK0_NORMPROD] = { "qk0_normprod", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "mean ||q_i|| ||k_0||",
        METRIC_CHART_MECHANICS, "Query–key-0 norm product", "mean ‖qᵢ‖ ‖k₀‖",
        "Mean product of the query norms and key 0's key norm, per layer (mean over heads). With "
        "cos(q, k₀) it factors the logit qᵢ·k₀: a sink driven by the angle leaves this flat.", 0, 0 },
    [METRIC_ENTROPY_NORM] = { "entropy_norm", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "attention entropy divided by log(allowed keys)",
        METRIC_CHART_MECHANICS, "Attention entropy (normalised)", "H / log(#keys)",
        "Mean entropy of each attention row divided by its maximum, log of the number of visible keys: "
        "1 = uniform, 0 = all mass on one key. Heads that become sinks fall towards 0.", 0, 0 },
    [METRIC_ENTROPY] = { "entropy", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "attention entropy per head (nats)",
        METRIC_CHART_MECHANICS, "Attention entropy", "entropy (nats)",
        "Mean entropy of the attention rows in nats, per layer (mean over heads). Lower = more peaked.", 0, 0 },
    [METRIC_MASSIVE_RATIO] = { "massive_ratio", METRIC_SHAPE_LAYER, METRIC_TIER_LIGHT,
        "massive activations: ||h_0|| / mean_{t>0} ||h_t|| after each block",
        METRIC_CHART_MECHANICS, "Massive activation at position 0", "‖h₀‖ / mean ‖hₜ‖",
        "Residual-stream norm of the first token over the mean norm of the others, after each layer "
        "(Sun et al. 2024). A sink usually comes with a massive first-token state. Log scale.", 1, 0 },
    [METRIC_MASSIVE_TOP_MEDIAN] = { "massive_top_median", METRIC_SHAPE_LAYER, METRIC_TIER_LIGHT,
        "top-1 / median |activation| after each block",
        METRIC_CHART_MECHANICS, "Largest activation / median", "max |x| / median |x|",
        "The single largest activation magnitude over the median magnitude, after each layer. Massive "
        "activations sit orders of magnitude above the median. Log scale.", 1, 0 },
    [METRIC_ALPHA_BOS_DORMANT] = { "alpha_bos_dormant", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "attention on BOS from the queries of class 0 (bigram_backcopy: not a trigger), where Guo et al. 2024 "
        "find a head dormant, parking its attention on BOS; logged when the probe has BOS and both query classes",
        METRIC_CHART_CLASSES, "Attention on BOS: dormant vs active queries", "attention on BOS", NULL, 0, 0 },
    [METRIC_ALPHA_BOS_ACTIVE] = { "alpha_bos_active", METRIC_SHAPE_HEAD, METRIC_TIER_LIGHT,
        "attention on BOS from the queries of class 1, whose target is recalled from context (bigram_backcopy: "
        "a trigger, after which the token before it is copied); an active head looks away from BOS there",
        METRIC_CHART_CLASSES, "Attention on BOS: dormant vs active queries", "attention on BOS", NULL, 0, 0 },
    [METRIC_LOSS_MARKOV] = { "loss_markov", METRIC_SHAPE_SCALAR, METRIC_TIER_LIGHT,
        "the probe loss over class-0 positions (bigram_backcopy: Markov steps); logged with the classes",
        METRIC_CHART_CLASSES, "Loss by query class", "probe loss (nats)", NULL, 0, 0 },
    [METRIC_LOSS_COPY] = { "loss_copy", METRIC_SHAPE_SCALAR, METRIC_TIER_LIGHT,
        "the probe loss over class-1 positions (bigram_backcopy: the copy after a trigger)",
        METRIC_CHART_CLASSES, "Loss by query class", "probe loss (nats)", NULL, 0, 0 },
    [METRIC_QK_EIG_MEAN] = { "qk_eig_mean", METRIC_SHAPE_HEAD, METRIC_TIER_HEAVY,
        "the QK eigenspectrum (Bao et al.): mean of the real parts of the eigenvalues of W_K^h W_Q^h^T / sqrt(D)",
        METRIC_CHART_MECHANICS, "QK spectrum: mean eigenvalue", "mean Re λ(W_Q W_Kᵀ/√d)",
        "Mean of the real parts of the eigenvalues of each head's query–key form W_Q W_Kᵀ/√d, per layer "
        "(mean over heads; Bao et al. 2024). A positive mean lets a key attract every query: a sink-friendly geometry.", 0, 0 },
    [METRIC_QK_EIG_VAR] = { "qk_eig_var", METRIC_SHAPE_HEAD, METRIC_TIER_HEAVY,
        "variance of the real parts of those eigenvalues",
        METRIC_CHART_MECHANICS, "QK spectrum: eigenvalue variance", "var Re λ",
        "Variance of the real parts of the QK eigenvalues, per layer (mean over heads).", 0, 0 },
    [METRIC_QK_SYM_MEAN] = { "qk_sym_mean", METRIC_SHAPE_HEAD, METRIC_TIER_HEAVY,
        "mean eigenvalue of the symmetric part of the bilinear form in model space (invariant to "
        "reparametrising the head)",
        METRIC_CHART_MECHANICS, "QK symmetric part: mean eigenvalue", "mean λ(sym)",
        "Mean eigenvalue of the symmetric part (W + Wᵀ)/2 of the QK form, per layer (mean over heads).", 0, 0 },
    [METRIC_QK_SYM_VAR] = { "qk_sym_var", METRIC_SHAPE_HEAD, METRIC_TIER_HEAVY,
        "variance of the eigenvalues of that symmetric part",
        METRIC_CHART_MECHANICS, "QK symmetric part: eigenvalue variance", "var λ(sym)",
        "Variance of the eigenvalues of the symmetric part of the QK form, per layer (mean over heads).", 0, 0 },
    [METRIC_NORM_ATTN0] = { "norm_attn0", METRIC_SHAPE_HEAD, METRIC_TIER_HEAVY,
        "norm-based attention (Kobayashi et al.): key 0's share of ||A_ij v_j W_O||",
        METRIC_CHART_MECHANICS, "Norm-based attention on key 0", "key 0's share of ‖A v W_O‖",
        "Key 0's share of the norm of what each head writes, ‖Aᵢⱼ vⱼ W_O‖ summed over queries (Kobayashi "
        "et al.), per layer (mean over heads). Far below α₀ when the sink's value is small: attention that "
        "does nothing.", 0, 0 },
    [METRIC_COLLAPSE_COS] = { "collapse_cos", METRIC_SHAPE_DEPTH, METRIC_TIER_HEAVY,
        "representational collapse of the token states after the embeddings and each block: mean pairwise cosine",
        METRIC_CHART_MECHANICS, "Collapse: mean pairwise cosine", "mean cos(hᵢ, hⱼ)",
        "Mean cosine similarity between token states at each depth (emb = embeddings). Rising towards 1 "
        "means the tokens' states become alike (representational collapse / over-mixing).", 0, 0 },
    [METRIC_COLLAPSE_RESID] = { "collapse_resid", METRIC_SHAPE_DEPTH, METRIC_TIER_HEAVY,
        "||X - 1 xbar^T||_F / ||X||_F of the token states at each depth",
        METRIC_CHART_MECHANICS, "Collapse: spread around the mean", "‖X − 1x̄ᵀ‖ / ‖X‖",
        "How far token states stay from their mean, relative to their size, at each depth. Towards 0 = collapse.", 0, 0 },
    [METRIC_EFF_RANK] = { "eff_rank", METRIC_SHAPE_DEPTH, METRIC_TIER_HEAVY,
        "effective rank of the token states at each depth",
        METRIC_CHART_MECHANICS, "Effective rank of token states", "exp(entropy of σ)",
        "Effective rank of the matrix of token states at each depth: exp of the entropy of its normalised "
        "singular values. Lower = states squeezed into fewer directions.", 0, 0 },
    [METRIC_SPREAD] = { "spread", METRIC_SHAPE_DEPTH, METRIC_TIER_HEAVY,
        "over-mixing: noise of norm `probe.perturb_scale` x ||h^0_p|| added to the input embedding of "
        "position p; per layer mean_{j>p} ||h_j - h'_j|| / ||h_j||",
        METRIC_CHART_MECHANICS, "Perturbation spread", "mean ‖Δhⱼ‖ / ‖hⱼ‖",
        "Relative change of later tokens' states at each depth when one early token is perturbed. "
        "Lower means less over-mixing; sinks are thought to act as a brake on it. Log scale.", 1, 0 },
    [METRIC_SPREAD_POS] = { "spread_pos", METRIC_SHAPE_SCALAR, METRIC_TIER_HEAVY,
        "the perturbed position p = `probe.perturb_pos`",
        METRIC_CHART_TITLE_OF, NULL, "perturbed position p", NULL, 0, METRIC_SPREAD },
    [METRIC_JACOBIAN_NORM] = { "jacobian_norm", METRIC_SHAPE_SCALAR, METRIC_TIER_HEAVY,
        "||d h^L_{T-1} / d h^0_p||_F through the autograd (backward to the input embeddings), estimated with "
        "`probe.jacobian_samples` Gaussian projections on `probe.jacobian_seq` sequences",
        METRIC_CHART_MECHANICS, "Jacobian norm", "‖∂h_T / ∂h_i‖",
        "Norm of the Jacobian of the last position's final state with respect to an early input "
        "embedding: how strongly one token's information reaches the end. Log scale.", 1, 0 },
    [METRIC_JACOBIAN_BY_POS] = { "jacobian_by_pos", METRIC_SHAPE_POSITION, METRIC_TIER_HEAVY,
        "the same norm for every input position i",
        METRIC_CHART_BY_POSITION, "Jacobian norm per input position", "‖∂h_T / ∂hᵢ‖",
        "Norm of the Jacobian of the last position's final state with respect to the input embedding "
        "of each position i, at the first, middle and last probe that measured it. Log scale: how much of "
        "each token's information still reaches the end of the sequence.", 1, 0 },
};

const MetricDef *metric_def(MetricId id) { return &TABLE[id]; }

const char *metric_name(MetricId id) { return TABLE[id].name; }

MetricId metric_find(const char *name)
{
    for (int m = 0; m < METRIC_COUNT; m++)
        if (TABLE[m].name && strcmp(TABLE[m].name, name) == 0) return (MetricId)m;
    return METRIC_COUNT;
}

const char *metric_shape_doc(MetricShape s)
{
    switch (s) {
    case METRIC_SHAPE_SCALAR: return "scalar";
    case METRIC_SHAPE_HEAD: return "[L][H]";
    case METRIC_SHAPE_LAYER: return "[L]";
    case METRIC_SHAPE_DEPTH: return "[L+1]";
    case METRIC_SHAPE_EPS: return "{\"eps\": x}";
    case METRIC_SHAPE_POSITION: return "[T]";
    }
    return "?";
}

const char *metric_chart_title(MetricId id)
{
    const MetricDef *d = &TABLE[id];
    return d->chart == METRIC_CHART_TITLE_OF ? TABLE[d->host].title : d->title;
}

void metric_chart_doc(char *out, size_t n, MetricId id)
{
    const MetricDef *d = &TABLE[id];
    const char *section = "?";
    switch (d->chart) {
    case METRIC_CHART_SINK_RATE:
    case METRIC_CHART_ALPHA0_SUMMARY: section = "Sink rate"; break;
    case METRIC_CHART_HEADS: section = "Heads, Onset"; break;
    case METRIC_CHART_ONSET_CELL: section = "Onset (second line of a cell)"; break;
    case METRIC_CHART_MECHANICS:
    case METRIC_CHART_BY_POSITION: section = "Mechanics"; break;
    case METRIC_CHART_TITLE_OF: section = "Mechanics (in the title)"; break;
    case METRIC_CHART_CLASSES: section = "Active and dormant heads"; break;
    case METRIC_CHART_NONE: section = "none"; break;
    }
    snprintf(out, n, "%s: %s", section, metric_chart_title(id) ? metric_chart_title(id) : "?");
}

/* A bar would end the Markdown cell. */
static void write_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

void metric_write_reference(FILE *f, MetricTier tier)
{
    char chart[256];
    fputs("| key | shape | what it measures | report chart |\n|---|---|---|---|\n", f);
    for (int m = 0; m < METRIC_COUNT; m++) {
        const MetricDef *d = &TABLE[m];
        if (d->tier != tier) continue;
        metric_chart_doc(chart, sizeof chart, (MetricId)m);
        fprintf(f, "| `%s` | ", d->name);
        write_cell(f, metric_shape_doc(d->shape));
        fputs(" | ", f);
        write_cell(f, d->doc);
        fputs(" | ", f);
        write_cell(f, chart);
        fputs(" |\n", f);
    }
}
