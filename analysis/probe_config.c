/* probe_config.c: the analysis layer's config keys, defaults and rules (probe_config.h). */
#include "analysis/probe_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/intervene.h"

static int parse_eps(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section)
{
    char buf[256], key[64];
    float eps[3];
    int n = 0;
    if (v->type != YAML_SEQUENCE_NODE ||
        v->data.sequence.items.top - v->data.sequence.items.start != 3) {
        key_error(x, v, d->key, "expected a list of 3 thresholds such as [0.3, 0.5, 0.8], got %s",
                  key_shown(v, buf, sizeof buf));
        return -1;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, n++) {
        snprintf(key, sizeof key, "%s[%d]", d->key, n);
        if (key_parse_float(x, key, key_node(x, *it), 0, 1, KEY_LO_OPEN | KEY_HI_OPEN, &eps[n]))
            return -1;
    }
    memcpy(((ProbeConfig *)section)->eps, eps, sizeof eps);
    return 0;
}

static void format_eps(char *out, size_t n, const void *section)
{
    const ProbeConfig *p = section;
    char a[32], b[32], e[32];
    key_format_float(a, sizeof a, p->eps[0]);
    key_format_float(b, sizeof b, p->eps[1]);
    key_format_float(e, sizeof e, p->eps[2]);
    snprintf(out, n, "[%s, %s, %s]", a, b, e);
}

static int parse_probe_bos(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section)
{
    ProbeConfig *p = section;
    char buf[256];
    if (key_is_auto(v, d)) {
        p->bos = -1;
        return 0;
    }
    if (key_parse_bool_text(key_scalar(v), &p->bos)) {
        key_error(x, v, d->key, "expected auto, true or false, got %s",
                  key_shown(v, buf, sizeof buf));
        return -1;
    }
    return 0;
}

static void format_probe_bos(char *out, size_t n, const void *section)
{
    const ProbeConfig *p = section;
    snprintf(out, n, "%s", p->bos < 0 ? "auto" : p->bos ? "true" : "false");
}

/* probe.interventions: a list of spec strings, each checked by the spec parser itself. */
static int parse_interventions(KeyCtx *x, const KeyDef *d, yaml_node_t *v, void *section)
{
    ProbeConfig *p = section;
    char buf[256], key[64], msg[512];
    if (v->type != YAML_SEQUENCE_NODE) {
        key_error(x, v, d->key, "expected a list of intervention specs such as [drop_bos, "
                  "\"block_key:0@1.2\"], got %s", key_shown(v, buf, sizeof buf));
        return -1;
    }
    int n = 0, rc = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, n++) {
        yaml_node_t *item = key_node(x, *it);
        const char *s = key_scalar(item);
        snprintf(key, sizeof key, "%s[%d]", d->key, n);
        Intervention iv;
        if (n >= PROBE_MAX_INTERVENTIONS) {
            key_error(x, item, d->key, "at most %d interventions", PROBE_MAX_INTERVENTIONS);
            return -1;
        }
        if (!s) {
            key_error(x, item, key, "expected a spec string, got %s", key_shown(item, buf, sizeof buf));
            rc = -1;
        } else if (intervene_parse(&iv, s, msg, sizeof msg)) {
            key_error(x, item, key, "%s", msg);
            rc = -1;
        } else {
            snprintf(p->interventions[n], PROBE_SPEC_LEN, "%s", s);
        }
    }
    if (rc == 0) p->n_interventions = n;
    return rc;
}

static void format_interventions(char *out, size_t n, const void *section)
{
    const ProbeConfig *p = section;
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < p->n_interventions && k < n; i++) {
        char q[2 * PROBE_SPEC_LEN + 8];
        key_format_string(q, sizeof q, p->interventions[i]);
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? ", " : "", q);
    }
    if (k < n) snprintf(out + k, n - k, "]");
}

#define P ProbeConfig
static const KeyDef ROWS[] = {
    KEY_INT(P, "probe.every", every, 0, KEY_BIG,
            "sink probe every N steps (0 = off); the default gives 50 probe points over the "
            "default 2000 steps"),
    KEY_INT(P, "probe.n_seq", n_seq, 1, KEY_BIG, "held-out probe sequences"),
    KEY_INT(P, "probe.seq_len", seq_len, 1, 1 << 20, "probe sequence length (<= max_seq_len)"),
    KEY_SPECIAL("probe.bos", KEY_AUTO, parse_probe_bos, format_probe_bos, "auto or bool",
                "BOS at position 0 of probe sequences; auto = follow the training data (data.bos)"),
    KEY_INT(P, "probe.heavy_every", heavy_every, 0, KEY_BIG,
            "costlier metrics (eigenspectra, perturbation spread) every N steps; 0 = only at "
            "checkpoints (always done there)"),
    KEY_SPECIAL("probe.eps", 0, parse_eps, format_eps, "list of 3 numbers",
                "sink-rate thresholds, each in (0, 1)"),
    KEY_INT(P, "probe.perturb_pos", perturb_pos, 0, KEY_BIG,
            "perturbation spread: the perturbed position (< probe.seq_len)"),
    KEY_FLOAT(P, "probe.perturb_scale", perturb_scale, 0, INFINITY, KEY_LO_OPEN,
              "perturbation spread: noise norm relative to the norm of h^0 at that position"),
    KEY_INT(P, "probe.jacobian_seq", jacobian_seq, 1, KEY_BIG,
            "sequences for the Jacobian-norm estimate"),
    KEY_INT(P, "probe.jacobian_samples", jacobian_samples, 1, KEY_BIG,
            "random projections per Jacobian-norm estimate"),
    KEY_SPECIAL("probe.interventions", 0, parse_interventions, format_interventions,
                "list of spec strings",
                "interventions `sinklab analyze` runs on the probe set besides --intervene "
                "(README \"Interventions\"); training ignores them"),
};
#undef P
const KeyTable PROBE_KEYS = KEY_TABLE(ROWS);

void probe_config_defaults(ProbeConfig *p)
{
    memset(p, 0, sizeof *p);
    p->every = 40;   /* 50 probe points over the default 2000 steps */
    p->n_seq = 100;
    p->seq_len = 64;
    p->bos = -1;
    p->eps[0] = 0.3f;
    p->eps[1] = 0.5f;
    p->eps[2] = 0.8f;
    p->perturb_pos = 1;
    p->perturb_scale = 0.5f;
    p->jacobian_seq = 8;
    p->jacobian_samples = 8;
}

int probe_config_check(const ProbeConfig *p, int max_seq_len, char *msg, size_t n)
{
#define BAD(...) do { snprintf(msg, n, __VA_ARGS__); return -1; } while (0)
    for (size_t i = 0; i < PROBE_KEYS.n_keys; i++)
        if (key_check_range(&PROBE_KEYS.keys[i], p, msg, n)) return -1;
    if (p->seq_len > max_seq_len)
        BAD("probe.seq_len (%d) is larger than model.max_seq_len (%d)", p->seq_len, max_seq_len);
    if (p->bos < -1 || p->bos > 1) BAD("probe.bos: expected auto, true or false");
    if (p->perturb_pos >= p->seq_len)
        BAD("probe.perturb_pos (%d) is outside the probe sequence probe.seq_len (%d)",
            p->perturb_pos, p->seq_len);
    for (int i = 0; i < 3; i++)
        if (!(p->eps[i] > 0 && p->eps[i] < 1))
            BAD("probe.eps[%d]: expected a number in (0, 1), got %g", i, (double)p->eps[i]);
#undef BAD
    return 0;
}

int probe_config_bos(const ProbeConfig *p, const DataConfig *data)
{
    if (p->bos >= 0) return p->bos;
    return data->bos != BOS_NONE;
}

int probe_config_warning(const ProbeConfig *p, const DataConfig *data, const ModelConfig *model,
                         char *msg, size_t n)
{
    snprintf(msg, n, "%s", "");
    if (p->seq_len <= data->seq_len) return 0;
    if (model->pos == POS_LEARNED)
        snprintf(msg, n, "warning: probe.seq_len (%d) is longer than data.seq_len (%d): the learned "
                 "position embeddings %d..%d are never trained, so every probe metric past position "
                 "%d measures untrained weights; set probe.seq_len <= %d", p->seq_len,
                 data->seq_len, data->seq_len, p->seq_len - 1, data->seq_len - 1, data->seq_len);
    else
        snprintf(msg, n, "warning: probe.seq_len (%d) is longer than data.seq_len (%d): the probe "
                 "measures positions %d..%d, which training never reached (length extrapolation, "
                 "not the trained model); set probe.seq_len <= %d", p->seq_len, data->seq_len,
                 data->seq_len, p->seq_len - 1, data->seq_len);
    return 1;
}
