/* budget.c: the memory a config needs, estimated before allocation (see budget.h). */
#include "train/budget.h"
#include "train/batch_shards.h"

#include <stdio.h>
#include <string.h>

/* Bytes one byte of corpus text costs once loaded and tokenized: the text with its growth slack
 * (2), the int32 token stream (4), document-start flags (1) and the split's bookkeeping (1). */
#define BYTES_PER_TEXT_BYTE 8.0
/* Synthetic documents average about 400 bytes; the budget assumes 1 KB. */
#define SYNTH_DOC_BYTES 1024.0

uint64_t budget_available_memory(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024u;
}

/* An upper bound on the model's float count: every optional tensor counted. */
static double param_floats(const ModelConfig *m)
{
    double C = m->d_model, F = m->d_ff, H = m->n_head, V = m->vocab_size;
    double per_layer = 5 * C * C + 3 * C * F + 2 * C * C / (H > 0 ? H : 1) + 16 * C + 2 * F + H;
    return m->n_layer * per_layer + 2 * V * C + (double)m->max_seq_len * C + C * C + 8 * C;
}

/* transformer_arena_bytes (model/transformer.c) in double precision: the same formula. */
static double arena_bytes(const ModelConfig *m, double B, double T)
{
    double C = m->d_model, F = m->d_ff, H = m->n_head, V = m->vocab_size;
    double per_layer = 16 * C + 5 * F + 3 * H * T + 2 * H;
    double rows = B * T;
    double floats = rows * (m->n_layer * per_layer * 2 + 12 * C + 4 * V);
    double bytes = floats * 4 + rows * T + m->n_layer * 65536.0;
    return bytes * 1.25 + 16.0 * (1 << 20);
}

/* Probe buffers (analysis/probe.c probe_init): two arenas, the clean hidden states, attention
 * maps, the probe batch. */
static double probe_bytes(const Config *c)
{
    const ModelConfig *m = &c->model;
    double B = c->probe.n_seq, T = c->probe.seq_len, L = m->n_layer, H = m->n_head, C = m->d_model;
    double Bj = c->probe.jacobian_seq < c->probe.n_seq ? c->probe.jacobian_seq : c->probe.n_seq;
    /* the Jacobian's samples run one per thread, each with its arena and seed, the threads
     * beyond the first with a gradient copy of the model (analysis/probe.c) */
    double S = c->probe.jacobian_samples > 0 ? c->probe.jacobian_samples : 1;
    double jt = c->train.threads < S ? c->train.threads : S;
    double floats = (L + 2) * B * T * C + jt * Bj * T * C + S * Bj * (C + T) + L * H * T * T +
                    4 * L * H * T + 24 * L * H + (jt - 1) * param_floats(m);
    return arena_bytes(m, B, T) + jt * arena_bytes(m, Bj, T) + 4 * floats + 24 * B * T;
}

static void add(Budget *b, const char *what, const char *keys, double bytes)
{
    b->item[b->n++] = (BudgetItem){what, keys, bytes};
    b->total += bytes;
}

void budget_compute(Budget *b, const Config *c)
{
    memset(b, 0, sizeof *b);
    const ModelConfig *m = &c->model;
    double B = c->train.batch_size, T = c->data.seq_len;
    add(b, "parameters, gradients and AdamW moments",
        "model.n_layer, model.d_model, model.d_ff, model.vocab_size", 16 * param_floats(m));
    /* one arena per batch shard, each for its share of the sequences, and a gradient copy for
     * every shard after the first (train/batch_shards.h) */
    double shards = batch_shards_resolve(c->train.batch_shards, c->train.batch_size);
    add(b, "step arenas (activations and their gradients)",
        "train.batch_size, data.seq_len, model.n_layer, model.vocab_size, train.batch_shards",
        shards * arena_bytes(m, B / shards, T));
    if (shards > 1)
        add(b, "gradients of the batch shards", "train.batch_shards, model size",
            (shards - 1) * 4 * param_floats(m));
    /* training and validation batches: 5 int32 arrays and the query classes each, plus the
     * attention mask */
    add(b, "batches", "train.batch_size, data.seq_len", 2 * (B * T * 21 + B * T * T));
    int bb = c->data.corpus == CORPUS_BIGRAM_BACKCOPY;
    if (bb)
        add(b, "bigram_backcopy chain", "data.corpus", 256.0 * 256.0 * sizeof(uint64_t));
    if (c->data.corpus == CORPUS_SYNTHETIC || (bb && c->data.bb_source == CORPUS_SYNTHETIC))
        add(b, "synthetic corpus", "data.synthetic_docs",
            c->data.synthetic_docs * SYNTH_DOC_BYTES * BYTES_PER_TEXT_BYTE);
    int probes = c->probe.every > 0 || c->checkpoint.every > 0 || c->checkpoint.log_spaced;
    if (probes)
        add(b, "probe set and its buffers", "probe.n_seq, probe.seq_len, probe.jacobian_seq",
            probe_bytes(c));
    uint64_t avail = c->train.memory_limit ? c->train.memory_limit : budget_available_memory();
    b->limit_auto = c->train.memory_limit == 0;
    /* no /proc/meminfo: only overflow-sized configs are refused */
    b->limit = avail ? (double)avail : 1e15;
}

void budget_format_bytes(char *out, size_t n, double bytes)
{
    const char *unit[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
    int u = 0;
    double v = bytes;
    while (v >= 1024 && u < 6) { v /= 1024; u++; }
    if (u == 0) snprintf(out, n, "%.0f bytes", bytes);
    else if (v >= 1e6) snprintf(out, n, "%.3g %s", v, unit[u]);
    else snprintf(out, n, "%.1f %s", v, unit[u]);
}

int budget_check(const Budget *b, char *err, size_t n)
{
    if (b->total <= b->limit) return 0;
    /* the largest item names the keys to lower */
    int big = 0;
    for (int i = 1; i < b->n; i++)
        if (b->item[i].bytes > b->item[big].bytes) big = i;
    char need[32], limit[32], item[32];
    budget_format_bytes(need, sizeof need, b->total);
    budget_format_bytes(limit, sizeof limit, b->limit);
    budget_format_bytes(item, sizeof item, b->item[big].bytes);
    snprintf(err, n, "the config needs about %s (%.0f bytes) but train.memory_limit allows %s%s; "
             "the largest part is the %s, %s, set by %s",
             need, b->total, limit, b->limit_auto ? " (auto: MemAvailable)" : "",
             b->item[big].what, item, b->item[big].keys);
    return -1;
}

int64_t budget_corpus_text_cap(const Budget *b)
{
    double spare = b->limit - b->total;
    if (spare < 0) spare = 0;
    double cap = spare / BYTES_PER_TEXT_BYTE;
    return cap > 4e18 ? INT64_MAX : (int64_t)cap;
}
