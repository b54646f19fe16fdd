/* intervene_run.h: runs the baseline and a list of interventions on one checkpoint through the
 * probe (the same probe sequences, the same transformer_forward as training), keeps what the
 * console table, interventions.json and interventions.html show, and writes those outputs
 * (intervene_report.c). */
#ifndef SINKLAB_INTERVENE_RUN_H
#define SINKLAB_INTERVENE_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "analysis/intervene.h"
#include "analysis/probe.h"

#define IV_TOP_HEADS 2

/* One forward run (the baseline or one intervention) on one checkpoint. */
typedef struct {
    int T;                      /* sequence length of this run (drop_bos: T - 1) */
    double loss, base_loss;     /* mean CE over the identical targets, and the baseline's there */
    int n_targets;              /* how many targets both score (0: no loss, MLM probe sets) */
    float *alpha0;              /* (L, H) */
    int alpha0_valid;           /* key 0 seen by >= T/4 queries (else alpha0/sink rate omitted) */
    float sink_rate[3];         /* at probe.eps; NaN when !alpha0_valid */
    int *loc;                   /* (L, H) sink location (-1: none qualifies) */
    float *loc_alpha;           /* (L, H) */
    int target_pos;             /* the spec's position (-1: none) */
    float *target_alpha;        /* (L, H) alpha at target_pos, or NULL */
    double jacobian_norm;       /* perturb only, else NaN */
    float *spread;              /* (L + 1) perturb only, else NULL */
    int top[IV_TOP_HEADS];      /* most changed heads l * H + h (baseline: -1) */
    float *maps;                /* baseline: (L, H, T, T); else (IV_TOP_HEADS, T, T); sequence 0 */
    char *probe_json;           /* {"probe": ...} every probe metric of this run */
    char note[256];
} IvResult;

typedef struct {
    int64_t step;
    char checkpoint[1024];
    int L, H, causal;
    float eps0;                 /* probe.eps[0], the threshold the table's sink rate uses */
    int mlm_masked;             /* bidirectional: probe positions given [MASK] to score (else 0) */
    Batch batch;                /* the probe batch every run starts from (for the record) */
    IvResult base;
    int n;
    IvResult *res;              /* n, in spec order */
} IvCheckpoint;

/* Runs the baseline and ivs[0..n) on p's probe set with model m. The probe and the model are
 * restored afterwards. 0, or -1 with err (a spec that does not fit the model or the probe). */
int intervene_run(IvCheckpoint *out, Probe *p, Transformer *m, const Intervention *ivs, int n,
                  char *err, size_t n_err);
void intervene_checkpoint_free(IvCheckpoint *c);

/* The console table: one row per intervention (delta loss, sink rate, where the sink moved). */
void intervene_print_table(FILE *f, const IvCheckpoint *c, const Intervention *ivs);

/* interventions.json: the probe settings, the specs, and per checkpoint the baseline and every
 * intervention with deltas. 0 or -1 (err). */
int intervene_write_json(const char *path, const IvCheckpoint *cks, int n_ck,
                         const Intervention *ivs, int n_iv, const ProbeConfig *pc,
                         const char *source, char *err, size_t n_err);
/* interventions.html: delta loss bars, before/after maps of the most changed heads, per-head
 * alpha0 before/after, and (several checkpoints) delta loss against step. 0 or -1 (err). */
int intervene_write_html(const char *path, const IvCheckpoint *cks, int n_ck,
                         const Intervention *ivs, int n_iv, const ProbeConfig *pc,
                         const char *source, char *err, size_t n_err);

#endif
