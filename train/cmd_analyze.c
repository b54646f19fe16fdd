/* cmd_analyze.c: `sinklab analyze CHECKPOINT|RUN_DIR [--config probe.yaml] [--set probe.k=v]
 * [--out DIR]`. Rebuilds the model from a checkpoint's own config and runs the same probe the
 * trainer runs, so a checkpoint at step N reproduces the step-N probe line of metrics.jsonl. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cblas.h>
#include <omp.h>

#include "analysis/jsonw.h"
#include "analysis/probe.h"
#include "data/dataset.h"
#include "model/transformer.h"
#include "train/checkpoint.h"
#include "train/commands.h"
#include "train/config.h"


#define MAX_SETS 64
#define MAX_CKPTS 4096

typedef struct {
    const char *config_path;
    char *sets[MAX_SETS];
    int n_sets;
    const char *out;
} AnalyzeArgs;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sinklab analyze CHECKPOINT|RUN_DIR [--config probe.yaml] [--set probe.key=value ...] [--out DIR]\n"
        "\n"
        "Runs the sink probes on a checkpoint (all metrics, as at a training checkpoint) and\n"
        "writes DIR/analysis_step_NNNNNNN.json; on a run folder, walks every checkpoint and writes\n"
        "DIR/emergence.jsonl (one probe line per checkpoint). DIR defaults to RUN/analysis.\n"
        "Only probe.* and train.threads may be changed: the model and data come from the checkpoint.\n");
}

/* The checkpoint's config with the user's probe overrides. */
static int load_checkpoint_config(Config *c, const char *ckpt, const AnalyzeArgs *a)
{
    char err[1024];
    char *yaml = NULL;
    if (ckpt_read_config(ckpt, &yaml, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab analyze: %s\n", err);
        return 2;
    }
    int rc = config_load_string(c, yaml, ckpt, err, sizeof err);
    free(yaml);
    static Config stored;
    stored = *c;
    if (rc == 0 && a->config_path) rc = config_merge_file(c, a->config_path, err, sizeof err);
    if (rc == 0 && a->config_path) {
        /* the model and data come from the checkpoint: a probe config may change probe.* and
         * train.threads only */
        static Config cmp;
        cmp = *c;
        cmp.probe = stored.probe;
        cmp.train.threads = stored.train.threads;
        char diff[512];
        if (config_diff(&stored, &cmp, diff, sizeof diff) > 0) {
            fprintf(stderr, "sinklab analyze: %s: only probe.* and train.threads can be changed "
                    "when analysing a checkpoint (%s)\n", a->config_path, diff);
            return 2;
        }
    }
    for (int i = 0; rc == 0 && i < a->n_sets; i++) {
        if (strncmp(a->sets[i], "probe.", 6) && strncmp(a->sets[i], "train.threads", 13)) {
            fprintf(stderr, "sinklab analyze: --set %s: only probe.* and train.threads can be "
                    "changed when analysing a checkpoint\n", a->sets[i]);
            return 2;
        }
        rc = config_set(c, a->sets[i], err, sizeof err);
    }
    if (rc == 0) rc = config_validate(c, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "sinklab analyze: %s\n", err);
        return 2;
    }
    return 0;
}

/* Probes one checkpoint, writing {"step", "checkpoint", "probe"} as one line to f. */
static int analyze_one(const char *ckpt, const AnalyzeArgs *a, FILE *f, int64_t *step_out)
{
    static Config c;
    int rc = load_checkpoint_config(&c, ckpt, a);
    if (rc) return rc;
    autograd_set_threads(c.train.threads);
    char err[1024];
    Transformer m;
    if (transformer_init(&m, &c.model, c.train.seed, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab analyze: %s: %s\n", ckpt, err);
        return 2;
    }
    CkptState st;
    Dataset *ds = NULL;
    Probe p;
    int have_probe = 0;
    rc = 2;
    if (ckpt_load(ckpt, &m.params, &st, 0, err, sizeof err) != 0) goto done;
    if (!(ds = dataset_open(&c.data, err, sizeof err))) goto done;
    if (probe_init(&p, &m, ds, &c.probe, err, sizeof err) != 0) goto done;
    have_probe = 1;
    char warn[512];
    if (probe_config_warning(&c.probe, &c.data, &c.model, warn, sizeof warn))
        fprintf(stderr, "%s: %s\n", ckpt, warn);
    JsonWriter w;
    jsonw_init(&w);
    jsonw_object_begin(&w);
    jsonw_key_int(&w, "step", st.step);
    jsonw_key_int(&w, "tokens", st.tokens_seen);
    probe_run(&p, &m, 1, &w);
    jsonw_key_string(&w, "checkpoint", ckpt);
    jsonw_object_end(&w);
    rc = jsonw_write_line(&w, f) == 0 ? 0 : 1;
    jsonw_free(&w);
    *step_out = st.step;
    float mx = 0.0f;
    for (int i = 0; i < p.L * p.H; i++) mx = p.alpha0[i] > mx ? p.alpha0[i] : mx;
    fprintf(stderr, "%s: step %lld | alpha0 max %.3f | sink rate @%g %.3f @%g %.3f @%g %.3f\n",
            ckpt, (long long)st.step, (double)mx, (double)c.probe.eps[0], (double)p.sink_rate[0],
            (double)c.probe.eps[1], (double)p.sink_rate[1], (double)c.probe.eps[2],
            (double)p.sink_rate[2]);
done:
    if (rc == 2) fprintf(stderr, "sinklab analyze: %s\n", err);
    if (have_probe) probe_free(&p);
    if (ds) dataset_free(ds);
    transformer_free(&m);
    return rc;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every RUN/checkpoints/step_*.ckpt in step order (names are zero-padded, so names sort). */
static int list_checkpoints(const char *run_dir, char **names, int cap)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "step_", 5) || len < 10 || strcmp(e->d_name + len - 5, ".ckpt")) continue;
        names[n] = malloc(strlen(dir) + len + 2);
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}

/* The run folder a checkpoint lives in (RUN/checkpoints/step_N.ckpt -> RUN), or ".". */
static void run_dir_of(const char *ckpt, char *out, size_t n)
{
    snprintf(out, n, "%s", ckpt);
    char *slash = strrchr(out, '/');
    if (!slash) { snprintf(out, n, "."); return; }
    *slash = 0;
    slash = strrchr(out, '/');
    if (slash && !strcmp(slash + 1, "checkpoints")) *slash = 0;
    else if (!strcmp(out, "checkpoints")) snprintf(out, n, ".");
}

static int make_out_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || is_dir(dir)) return 0;
    fprintf(stderr, "sinklab analyze: %s: cannot create the output folder\n", dir);
    return -1;
}

static int analyze_run(const char *run_dir, const AnalyzeArgs *a)
{
    char out[1100], path[1200];
    if (a->out) snprintf(out, sizeof out, "%s", a->out);
    else snprintf(out, sizeof out, "%s/analysis", run_dir);
    char **names = calloc(MAX_CKPTS, sizeof *names);
    int n = list_checkpoints(run_dir, names, MAX_CKPTS);
    if (n <= 0) {
        fprintf(stderr, "sinklab analyze: %s: no checkpoints/step_*.ckpt found\n", run_dir);
        free(names);
        return 2;
    }
    if (make_out_dir(out) != 0) { free(names); return 1; }
    snprintf(path, sizeof path, "%s/emergence.jsonl", out);
    FILE *f = fopen(path, "w");
    int rc = f ? 0 : 1, done = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        /* a damaged checkpoint is skipped with a warning: the others still make the curves */
        char err[1024];
        if (ckpt_verify(names[i], err, sizeof err) != 0) {
            fprintf(stderr, "sinklab analyze: skipping %s\n", err);
            continue;
        }
        int64_t step;
        rc = analyze_one(names[i], a, f, &step);
        done += rc == 0;
    }
    if (rc == 0 && done == 0) {
        fprintf(stderr, "sinklab analyze: %s: no intact checkpoint\n", run_dir);
        rc = 2;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (f && fclose(f) != 0) rc = 1;
    if (rc == 0) printf("%s\n", path);
    return rc;
}

static int analyze_checkpoint(const char *ckpt, const AnalyzeArgs *a)
{
    char run[1024], out[1100], tmp[1200], path[1200];
    run_dir_of(ckpt, run, sizeof run);
    if (a->out) snprintf(out, sizeof out, "%s", a->out);
    else snprintf(out, sizeof out, "%s/analysis", run);
    if (make_out_dir(out) != 0) return 1;
    snprintf(tmp, sizeof tmp, "%s/analysis.tmp", out);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "sinklab analyze: %s: cannot write\n", tmp);
        return 1;
    }
    int64_t step = 0;
    int rc = analyze_one(ckpt, a, f, &step);
    if (fclose(f) != 0 && rc == 0) rc = 1;
    if (rc != 0) {
        remove(tmp);
        return rc;
    }
    snprintf(path, sizeof path, "%s/analysis_step_%07lld.json", out, (long long)step);
    if (rename(tmp, path) != 0) return 1;
    printf("%s\n", path);
    return 0;
}

int cmd_analyze(int argc, char **argv)
{
    AnalyzeArgs a = {0};
    const char *target = NULL;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(s, "--set") || !strcmp(s, "--out") || !strcmp(s, "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sinklab analyze: %s needs a value\n", s);
                return 2;
            }
            if (!strcmp(s, "--out")) a.out = argv[++i];
            else if (!strcmp(s, "--config")) a.config_path = argv[++i];
            else if (a.n_sets < MAX_SETS) a.sets[a.n_sets++] = argv[++i];
        } else if (s[0] == '-') {
            fprintf(stderr, "sinklab analyze: unknown option '%s'\n", s);
            usage(stderr);
            return 2;
        } else if (!target) {
            target = s;
        } else {
            fprintf(stderr, "sinklab analyze: unexpected argument '%s'\n", s);
            return 2;
        }
    }
    if (!target) {
        usage(stderr);
        return 2;
    }
    return is_dir(target) ? analyze_run(target, &a) : analyze_checkpoint(target, &a);
}
