/* cmd_data.c: `sinklab data CONFIG [--set k=v ...] [--batches N] [--step S] [--split train|val]
 * [--probe] [--json]`: shows exactly what the model will be fed, for a person (decoded text with
 * document boundaries, positions, loss and masked positions) or as one JSON object per sequence. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/probe_config.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "train/commands.h"
#include "train/config.h"

typedef struct {
    const char *config;
    const char *sets[64];
    int n_sets;
    int batches;
    long long step;
    DataSplit split;
    int probe, json;
} DataArgs;

static void data_usage(FILE *f)
{
    fprintf(f,
        "usage: sinklab data CONFIG.yaml [--set key.path=value ...] [--batches N] [--step S]\n"
        "                    [--split train|val] [--probe] [--json]\n"
        "\n"
        "Prints the batches training would see (batch size train.batch_size, length data.seq_len):\n"
        "decoded text with <bos>/<eos>/<pad> markers, one block per document with its positions,\n"
        "where the loss is off, and the masked positions (MLM). --probe prints the probe set\n"
        "(probe.n_seq x probe.seq_len from held-out documents) instead. --json prints one object\n"
        "per sequence: tokens, targets, positions, doc_ids, loss_mask, query_class, prefix_len,\n"
        "text. query_class 1 marks positions whose target is recalled from context\n"
        "(bigram_backcopy: a trigger, whose next token copies the token before it).\n"
        "Exit codes: 0 success, 2 bad usage or input, 1 runtime failure.\n");
}

/* A whole decimal number in [lo, hi]: "2abc" and "12x" are refused, not read as 2 and 12. */
static int parse_count(const char *flag, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "sinklab data: %s '%s': expected a whole number from %lld to %lld\n",
                flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(DataArgs *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->batches = 1;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(s, "--set") && has_val && a->n_sets < 64) a->sets[a->n_sets++] = argv[++i];
        else if (!strncmp(s, "--set=", 6) && a->n_sets < 64) a->sets[a->n_sets++] = s + 6;
        else if (!strcmp(s, "--batches") && has_val) {
            long long v;
            if (parse_count(s, argv[++i], 1, 1000000, &v)) return -1;
            a->batches = (int)v;
        } else if (!strcmp(s, "--step") && has_val) {
            long long v;
            if (parse_count(s, argv[++i], 0, INT_MAX, &v)) return -1;
            a->step = v;
        }
        else if (!strcmp(s, "--split") && has_val) {
            const char *v = argv[++i];
            if (!strcmp(v, "train")) a->split = DATA_TRAIN;
            else if (!strcmp(v, "val") || !strcmp(v, "validation")) a->split = DATA_VAL;
            else {
                fprintf(stderr, "sinklab data: --split: '%s'; expected train or val\n", v);
                return -1;
            }
        } else if (!strcmp(s, "--probe")) a->probe = 1;
        else if (!strcmp(s, "--json")) a->json = 1;
        else if (s[0] != '-' && !a->config) a->config = s;
        else {
            fprintf(stderr, "sinklab data: unexpected argument '%s'\n", s);
            return -1;
        }
    }
    if (!a->config) {
        fprintf(stderr, "sinklab data: missing CONFIG.yaml\n");
        return -1;
    }
    if (a->batches < 1 || a->step < 0) {
        fprintf(stderr, "sinklab data: --batches must be >= 1 and --step >= 0\n");
        return -1;
    }
    return 0;
}

static void json_ints(FILE *f, const char *key, const int32_t *x, int n)
{
    fprintf(f, ",\"%s\":[", key);
    for (int i = 0; i < n; i++) fprintf(f, i ? ",%d" : "%d", (int)x[i]);
    fputc(']', f);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void print_json(FILE *f, const Batch *bt, int b, const char *what, long long step, char *text, size_t cap)
{
    int T = bt->T;
    size_t o = (size_t)b * (size_t)T;
    fprintf(f, "{\"split\":\"%s\",\"step\":%lld,\"seq\":%d", what, step, b);
    json_ints(f, "tokens", bt->tokens + o, T);
    json_ints(f, "targets", bt->targets + o, T);
    json_ints(f, "positions", bt->positions + o, T);
    json_ints(f, "doc_ids", bt->doc_ids + o, T);
    fputs(",\"loss_mask\":[", f);
    for (int i = 0; i < T; i++) fprintf(f, i ? ",%d" : "%d", bt->loss_mask[o + i] != 0.0f);
    fputs("],\"query_class\":[", f);
    for (int i = 0; i < T; i++) fprintf(f, i ? ",%d" : "%d", (int)bt->query_class[o + i]);
    fprintf(f, "],\"prefix_len\":%d,\"text\":", (int)bt->prefix_len[b]);
    tok_decode(bt->tokens + o, (size_t)T, text, cap);
    json_string(f, text);
    fputs("}\n", f);
}

/* Runs of positions with loss off, as "0..15 63". */
static void print_loss_off(FILE *f, const float *lm, int T)
{
    int n_on = 0;
    for (int i = 0; i < T; i++) n_on += lm[i] != 0.0f;
    fprintf(f, "  loss on %d of %d positions", n_on, T);
    if (n_on == T) {
        fputc('\n', f);
        return;
    }
    fputs("; off at t =", f);
    int shown = 0;
    for (int i = 0; i < T && shown < 24; i++) {
        if (lm[i] != 0.0f) continue;
        int j = i;
        while (j + 1 < T && lm[j + 1] == 0.0f) j++;
        if (j > i) fprintf(f, " %d..%d", i, j);
        else fprintf(f, " %d", i);
        shown++;
        i = j;
    }
    fputs(shown == 24 ? " ...\n" : "\n", f);
}

static void show_token(char *out, size_t cap, int32_t id)
{
    tok_decode(&id, 1, out, cap);
    if (!strcmp(out, "\n")) snprintf(out, cap, "\\n");
}

/* Positions whose target is recalled from context (query_class 1), e.g. bigram_backcopy's
 * copies: "t5 'e' -> 'h' (= t4)". */
static void print_classes(FILE *f, const Batch *bt, int b)
{
    int T = bt->T, n = 0;
    size_t o = (size_t)b * (size_t)T;
    for (int i = 0; i < T; i++) n += bt->query_class[o + i] != 0;
    if (!n) return;
    fprintf(f, "  %d quer%s of class 1 (trigger -> copy of the token before it):", n, n == 1 ? "y" : "ies");
    int shown = 0;
    for (int i = 0; i < T && shown < 12; i++) {
        if (!bt->query_class[o + i]) continue;
        char a[16], c[16];
        show_token(a, sizeof a, bt->tokens[o + i]);
        show_token(c, sizeof c, bt->targets[o + i]);
        fprintf(f, " t%d '%s'->'%s'", i, a, c);
        shown++;
    }
    fputs(shown < n ? " ...\n" : "\n", f);
}

static void print_human(FILE *f, const Batch *bt, int b, const DataConfig *dc, const char *what,
                        long long step, char *text, size_t cap)
{
    int T = bt->T;
    size_t o = (size_t)b * (size_t)T;
    const int32_t *tok = bt->tokens + o, *doc = bt->doc_ids + o, *pos = bt->positions + o;
    fprintf(f, "== %s step %lld, sequence %d", what, step, b);
    if (dc->kind == MODEL_PREFIX_LM) fprintf(f, ", prefix_len %d", (int)bt->prefix_len[b]);
    fputc('\n', f);
    for (int i = 0; i < T;) {
        int j = i;
        while (j + 1 < T && doc[j + 1] == doc[i]) j++;
        if (doc[i] < 0) fprintf(f, "  <pad> x %d  [t %d..%d]\n", j - i + 1, i, j);
        else {
            fprintf(f, "  doc %d  [t %d..%d]  pos %d..%d\n", (int)doc[i], i, j, (int)pos[i], (int)pos[j]);
            tok_decode(tok + i, (size_t)(j - i + 1), text, cap);
            fputs("    | ", f);
            for (const char *s = text; *s; s++) fputs(*s == '\n' ? "\n    | " : (char[2]){*s, 0}, f);
            fputc('\n', f);
        }
        i = j + 1;
    }
    print_loss_off(f, bt->loss_mask + o, T);
    print_classes(f, bt, b);
    if (dc->kind == MODEL_BIDIRECTIONAL) {
        fputs("  masked:", f);
        for (int i = 0; i < T; i++) {
            if (bt->loss_mask[o + i] == 0.0f) continue;
            char in[16], want[16];
            tok_decode(tok + i, 1, in, sizeof in);
            tok_decode(bt->targets + o + i, 1, want, sizeof want);
            fprintf(f, " t%d:%s(%s)", i, !strcmp(in, "\n") ? "\\n" : in, !strcmp(want, "\n") ? "\\n" : want);
        }
        fputc('\n', f);
    }
}

static int load_config(Config *cfg, const DataArgs *a)
{
    char err[2048];
    config_defaults(cfg);
    int rc = config_load(cfg, a->config, err, sizeof err);
    for (int i = 0; !rc && i < a->n_sets; i++) rc = config_set(cfg, a->sets[i], err, sizeof err);
    if (!rc) rc = config_validate(cfg, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    if (!rc) rc = cli_check_budget(cfg, "data");
    return rc;
}

int cmd_data(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            data_usage(stdout);
            return 0;
        }
    DataArgs a;
    Config cfg;
    if (parse_args(&a, argc, argv)) {
        data_usage(stderr);
        return 2;
    }
    if (load_config(&cfg, &a)) return 2;
    char err[2048];
    Dataset *ds = dataset_open(&cfg.data, err, sizeof err);
    if (!ds) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    int B = a.probe ? cfg.probe.n_seq : cfg.train.batch_size;
    int T = a.probe ? cfg.probe.seq_len : cfg.data.seq_len;
    int bos = probe_config_bos(&cfg.probe, &cfg.data);
    char warn[512];
    if (a.probe && probe_config_warning(&cfg.probe, &cfg.data, &cfg.model, warn, sizeof warn))
        fprintf(stderr, "%s\n", warn);
    size_t cap = (size_t)T * 8 + 16;
    char *text = malloc(cap);
    Batch bt;
    batch_alloc(&bt, B, T);
    int rc = 0;
    if (!a.json) {
        char desc[1200];
        dataset_describe(ds, desc, sizeof desc);
        printf("%s\n", desc);
    }
    for (int n = 0; n < (a.probe ? 1 : a.batches) && !rc; n++) {
        long long step = a.step + n;
        const char *what = a.probe ? "probe" : a.split == DATA_TRAIN ? "train" : "val";
        if (a.probe && dataset_probe_set(ds, B, T, bos, &bt)) {
            fprintf(stderr, "%s: the validation split cannot fill %d probe sequences of %d tokens "
                    "(needs >= %d held-out documents); raise data.val_fraction or lower probe.n_seq\n",
                    cfg.source, B, T, B);
            rc = 2;
            break;
        }
        /* the trainer draws training batches with train.seed and validation batches with
         * data.split_seed (every seed is scored on the same batches): show exactly those */
        uint64_t seed = a.split == DATA_VAL ? cfg.data.split_seed : cfg.train.seed;
        if (!a.probe) dataset_batch(ds, a.split, seed, step, &bt);
        for (int b = 0; b < B; b++) {
            if (a.json) print_json(stdout, &bt, b, what, step, text, cap);
            else print_human(stdout, &bt, b, &cfg.data, what, step, text, cap);
        }
    }
    if (fflush(stdout)) rc = 1;
    free(text);
    batch_free(&bt);
    dataset_free(ds);
    return rc;
}
