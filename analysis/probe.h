/* probe.h: the sink observatory's measurement. A fixed set of held-out sequences goes through the
 * same transformer_forward that training uses, and every sink metric of SCIENCE.md is computed
 * from what that pass kept (attention probabilities, q/k/v, hidden states). The same code serves
 * the trainer (every probe.every steps and at checkpoints) and `sinklab analyze`, so a checkpoint
 * reproduces its probe line exactly. */
#ifndef SINKLAB_PROBE_H
#define SINKLAB_PROBE_H

#include <stdint.h>

#include "analysis/jsonw.h"
#include "data/dataset.h"
#include "model/transformer.h"
#include "analysis/probe_config.h"

typedef struct {
    ProbeConfig cfg;
    int bos;                  /* resolved BOS policy of the probe sequences */
    int L, H, T, B;
    Batch batch;              /* the fixed probe set */
    Graph graph;              /* inference pass, kept until the next run for probe_write_maps */
    Graph *jac_graph;         /* [n_jac_graph] the Jacobian passes (record a tape), one per thread */
    int n_jac_graph;
    ForwardTrace trace;
    float *alpha;             /* (L, H, T) alpha_k of every key, last run */
    float *alpha0;            /* (L, H) */
    float *value_norms;       /* (L, H, T) mean ||v_t|| per position, last run */
    float sink_rate[3];
    double loss;              /* the model's loss on the probe set, last run */
    int loss_positions;       /* how many probe positions count in it (0: MLM probes) */
    int has_classes;          /* the probe set has class-1 queries (Batch.query_class) */
    int alpha0_valid;         /* key 0 is seen by at least T/4 queries (else alpha0 is omitted) */
    double seconds;           /* time spent in probe_run so far */
    /* Interventions (analysis/intervene.c) set these between runs; probe_init clears them. */
    const LayerEdit *edit;    /* [l] attention edits applied in every pass, or NULL */
    int perturb_by_id;        /* spread: replace the token at perturb_pos by perturb_id ... */
    int perturb_id;           /* ... (an embedding difference) instead of adding noise */
    struct ProbeScratch *scratch;
} Probe;

/* Builds the probe set from the dataset's held-out documents. bos < 0 follows the training data
 * (a BOS at position 0 when data.bos puts one at window or document starts). Returns 0, or -1
 * with err when the held-out split cannot fill it. Its two graphs are sized by dry passes on m
 * (transformer_measure_arena), which leave m as it was: call it after autograd_set_threads. */
int probe_init(Probe *p, Transformer *m, const Dataset *ds, const ProbeConfig *cfg,
               char *err, size_t n_err);
void probe_free(Probe *p);

/* Runs the probe and writes its metrics as the member "probe" of the open JSON object in w.
 * heavy adds the costlier metrics (QK spectrum, norm-based attention, collapse, perturbation
 * spread, Jacobian norm). The model's parameter gradients are used as scratch by the Jacobian
 * pass: call it between steps, after the optimizer update. */
void probe_run(Probe *p, Transformer *m, int heavy, JsonWriter *w);

/* Writes PATH (probe/step_NNNNNNN.json): the last run's attention maps of probe sequence 0, the
 * value norm per position and alpha for every key, for the report. Returns 0 or -1 (err). */
int probe_write_maps(const Probe *p, const char *path, int64_t step, char *err, size_t n_err);

/* alpha_0 of uniform attention under the probe's own mask (H_T/T for causal, 1/T bidirectional):
 * the baseline an untrained model scores. */
double probe_uniform_alpha0(const Probe *p);

#endif
