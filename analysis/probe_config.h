/* probe_config.h: the `probe:` section of a run config. The analysis layer owns these keys
 * (probe_config.c: names, ranges, defaults, documentation) and their rules. */
#ifndef SINKLAB_PROBE_CONFIG_H
#define SINKLAB_PROBE_CONFIG_H

#include <stddef.h>

#include "base/keys.h"
#include "data/data_config.h"
#include "model/model_config.h"

#define PROBE_MAX_INTERVENTIONS 16
#define PROBE_SPEC_LEN 128      /* = IV_SPEC_LEN */

typedef struct {
    int every;                  /* 0 = off */
    int n_seq, seq_len;
    int bos;                    /* -1 = follow the training data's BOS policy */
    int heavy_every;            /* costlier metrics; always at checkpoints */
    float eps[3];               /* sink-rate thresholds: 0.3 0.5 0.8 */
    int perturb_pos;            /* perturbation spread: the perturbed position (default 1) */
    float perturb_scale;        /* noise norm relative to ||h^0|| at that position (0.5) */
    int jacobian_seq;           /* sequences for the Jacobian-norm estimate (8) */
    int jacobian_samples;       /* random projections per estimate (8) */
    int n_interventions;        /* `sinklab analyze` runs these specs (analysis/intervene.h) */
    char interventions[PROBE_MAX_INTERVENTIONS][PROBE_SPEC_LEN];
} ProbeConfig;

/* Every probe.* key, in the order a resolved config is written. */
extern const KeyTable PROBE_KEYS;

void probe_config_defaults(ProbeConfig *p);
/* Every rule on a probe config, for a model built for max_seq_len positions: 0, or -1 with msg. */
int probe_config_check(const ProbeConfig *p, int max_seq_len, char *msg, size_t n);

/* The probe's BOS policy, resolved: 1 puts a BOS at position 0 of every probe sequence. auto
 * (bos -1) follows the training data: probe sequences start at document starts, so a BOS at
 * window starts or at document starts (data.bos window_start, doc_start or both) lands at position
 * 0 either way. The trainer, `analyze` and `sinklab data --probe` all call this. */
int probe_config_bos(const ProbeConfig *p, const DataConfig *data);

/* A probe longer than the training sequences measures positions training never reached (with
 * learned positions, embeddings that were never trained): returns 1 with a warning in msg when
 * probe.seq_len > data.seq_len, else 0 (msg ""). */
int probe_config_warning(const ProbeConfig *p, const DataConfig *data, const ModelConfig *model,
                         char *msg, size_t n);

#endif
