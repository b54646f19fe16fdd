/* cmd_analyze.c: `sinklab analyze CHECKPOINT|RUN_DIR [--config probe.yaml] [--set probe.k=v]
 * [--out DIR] [--intervene SPEC ...] [--heads L.H,...] [--force]`. Rebuilds the model from a
 * checkpoint's own config and runs the same probe the trainer runs, so a checkpoint at step N
 * reproduces the step-N probe line of metrics.jsonl; with interventions, runs each of them on
 * the same probe set next to the unmodified model (analysis/intervene_run.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cblas.h>
#include <omp.h>

#include "analysis/intervene_run.h"
#include "analysis/jsonw.h"
#include "analysis/probe.h"
#include "analysis/report.h"
#include "data/dataset.h"
#include "model/transformer.h"
#include "train/checkpoint.h"
#include "train/commands.h"
#include "train/config.h"
#include "train/config_flat.h"


#define MAX_SETS 64
#define MAX_CKPTS 4096
#define MAX_SPECS PROBE_MAX_INTERVENTIONS

typedef struct {
    const char *config_path;
    char *sets[MAX_SETS];
    int n_sets;
    const char *out;
    const char *specs[MAX_SPECS];      /* --intervene */
    int n_specs;
    IvTarget heads[IV_MAX_TARGETS];    /* --heads: default targets of head edits */
    int n_heads;
    int force;
} AnalyzeArgs;

/* The interventions of one analysis: probe.interventions, then every --intervene. */
typedef struct {
    Intervention iv[2 * MAX_SPECS];
    int n;
} IvList;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sinklab analyze CHECKPOINT|RUN_DIR [--config probe.yaml] [--set probe.key=value ...] [--out DIR]\n"
        "                      [--intervene SPEC ...] [--heads L.H,...] [--force]\n"
        "\n"
        "Runs the sink probes on a checkpoint (all metrics, as at a training checkpoint) and\n"
        "writes DIR/analysis_step_NNNNNNN.json; on a run folder, walks every checkpoint and writes\n"
        "DIR/emergence.jsonl (one probe line per checkpoint). DIR defaults to RUN/analysis.\n"
        "Only probe.* and train.threads may be changed: the model and data come from the checkpoint.\n"
        "\n"
        "  --intervene SPEC  run an intervention next to the unmodified model on the same probe\n"
        "                    sequences (repeatable; also probe.interventions); writes\n"
        "                    DIR/interventions.json and DIR/interventions.html and prints a table.\n"
        "                    SPEC: drop_bos, add_bos, replace_first:ID, randomize_first[:N],\n"
        "                    fixed_token:ID@P, isolate:P, reset:P, window:W, block_key:P[@L.H],\n"
        "                    zero_value:P[@L.H], scale_attn:P,F[@L.H], pos_swap:I,J, pos_shift:K,\n"
        "                    pos_as:J=I, perturb:P[:noise=S|id=ID], and A+B to compose them\n"
        "  --heads L.H,...   the heads block_key/zero_value/scale_attn act on when a spec has no @\n"
        "  --force           replace an earlier interventions.json/.html in DIR\n");
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

/* The spec list: the config's probe.interventions, then the command line's. */
static int collect_specs(IvList *list, const ProbeConfig *pc, const AnalyzeArgs *a)
{
    char err[600];
    list->n = 0;
    for (int i = 0; i < pc->n_interventions + a->n_specs; i++) {
        const char *spec = i < pc->n_interventions ? pc->interventions[i] : a->specs[i - pc->n_interventions];
        Intervention *iv = &list->iv[list->n++];
        if (intervene_parse(iv, spec, err, sizeof err)) {
            fprintf(stderr, "sinklab analyze: %s %s\n", i < pc->n_interventions ?
                    "probe.interventions:" : "--intervene", err);
            return 2;
        }
        intervene_default_targets(iv, a->heads, a->n_heads);
    }
    return 0;
}

/* Probes one checkpoint, writing {"step", "checkpoint", "probe"} as one line to f; with ivc,
 * runs the interventions instead and keeps their results there. */
static int analyze_one(const char *ckpt, const AnalyzeArgs *a, FILE *f, int64_t *step_out,
                       IvCheckpoint *ivc, IvList *list)
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
    if (ivc) {
        rc = collect_specs(list, &c.probe, a);
        if (rc == 0 && intervene_run(ivc, &p, &m, list->iv, list->n, err, sizeof err) != 0) {
            fprintf(stderr, "sinklab analyze: %s: %s\n", ckpt, err);
            rc = 2;
        }
        if (rc == 0) {
            ivc->step = st.step;
            snprintf(ivc->checkpoint, sizeof ivc->checkpoint, "%s", ckpt);
            intervene_print_table(stdout, ivc, list->iv);
            for (int i = 0; i < ivc->n; i++)
                if (ivc->res[i].note[0]) fprintf(stderr, "sinklab analyze: note: %s\n", ivc->res[i].note);
        }
        *step_out = st.step;
        probe_free(&p);
        dataset_free(ds);
        transformer_free(&m);
        return rc;
    }
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
        rc = analyze_one(names[i], a, f, &step, NULL, NULL);
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
    int rc = analyze_one(ckpt, a, f, &step, NULL, NULL);
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

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether the resolved config of ckpt lists interventions (probe.interventions): 1, 0, or 2 when
 * the config cannot be read. */
static int config_has_interventions(const char *ckpt, const AnalyzeArgs *a)
{
    static Config c;
    if (load_checkpoint_config(&c, ckpt, a) != 0) return 2;
    return c.probe.n_interventions > 0;
}

/* The run's report.html links RUN/analysis/interventions.html when it exists: written again so
 * the new page is one click from it (a report that cannot be rewritten only costs the link). */
static void relink_report(const char *run)
{
    char path[1200], err[1024];
    snprintf(path, sizeof path, "%s/report.html", run);
    if (!file_exists(path)) return;
    KeyValueList cfg = {0};
    if (config_flatten_run(run, &cfg, err, sizeof err) != 0 || report_write(run, &cfg, err, sizeof err) != 0)
        fprintf(stderr, "sinklab analyze: warning: %s not rewritten to link the analysis: %s\n", path, err);
    else
        printf("%s (links it)\n", path);
    kv_free(&cfg);
}

/* Intervention mode: every intervention on one checkpoint, or on every checkpoint of a run
 * folder (then the report shows delta loss against step), into DIR/interventions.{json,html}. */
static int analyze_interventions(const char *target, int n, char **names, const AnalyzeArgs *a)
{
    char run[1024], out[1100], jpath[1200], hpath[1200], err[1024];
    if (is_dir(target)) snprintf(run, sizeof run, "%s", target);
    else run_dir_of(target, run, sizeof run);
    if (a->out) snprintf(out, sizeof out, "%s", a->out);
    else snprintf(out, sizeof out, "%s/analysis", run);
    snprintf(jpath, sizeof jpath, "%s/interventions.json", out);
    snprintf(hpath, sizeof hpath, "%s/interventions.html", out);
    /* an earlier analysis is never replaced by accident */
    if (!a->force && (file_exists(jpath) || file_exists(hpath))) {
        fprintf(stderr, "sinklab analyze: %s exists (an earlier intervention analysis); pass "
                "--force to replace it, or --out DIR\n", file_exists(jpath) ? jpath : hpath);
        return 2;
    }
    if (make_out_dir(out) != 0) return 1;
    IvCheckpoint *cks = xcalloc((size_t)n, sizeof *cks);
    static IvList list;
    static Config c;
    int rc = 0, done = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (n > 1 && ckpt_verify(names[i], err, sizeof err) != 0) {
            fprintf(stderr, "sinklab analyze: skipping %s\n", err);
            continue;
        }
        int64_t step;
        rc = analyze_one(names[i], a, NULL, &step, &cks[done], &list);
        done += rc == 0;
    }
    if (rc == 0 && done == 0) {
        fprintf(stderr, "sinklab analyze: %s: no intact checkpoint\n", target);
        rc = 2;
    }
    if (rc == 0) rc = load_checkpoint_config(&c, names[0], a);
    if (rc == 0 && (intervene_write_json(jpath, cks, done, list.iv, list.n, &c.probe, target, err,
                                         sizeof err) != 0 ||
                    intervene_write_html(hpath, cks, done, list.iv, list.n, &c.probe, target, err,
                                         sizeof err) != 0)) {
        fprintf(stderr, "sinklab analyze: %s\n", err);
        rc = 1;
    }
    if (rc == 0) printf("%s\n%s\n", jpath, hpath);
    if (rc == 0 && !a->out) relink_report(run);
    for (int i = 0; i < n; i++) intervene_checkpoint_free(&cks[i]);
    free(cks);
    return rc;
}

/* Chooses the mode: interventions when asked for (flags or probe.interventions). */
static int analyze_target(const char *target, const AnalyzeArgs *a)
{
    int run = is_dir(target);
    char **names = calloc(MAX_CKPTS, sizeof *names);
    int n = 1;
    if (run) {
        n = list_checkpoints(target, names, MAX_CKPTS);
        if (n <= 0) {
            fprintf(stderr, "sinklab analyze: %s: no checkpoints/step_*.ckpt found\n", target);
            free(names);
            return 2;
        }
    } else {
        names[0] = strdup(target);
    }
    int want = a->n_specs > 0 ? 1 : config_has_interventions(names[0], a);
    int rc = want == 2 ? 2 : want ? analyze_interventions(target, n, names, a)
                             : run ? analyze_run(target, a) : analyze_checkpoint(target, a);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
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
        } else if (!strcmp(s, "--force")) {
            a.force = 1;
        } else if (!strcmp(s, "--set") || !strcmp(s, "--out") || !strcmp(s, "--config") ||
                   !strcmp(s, "--intervene") || !strcmp(s, "--heads")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sinklab analyze: %s needs a value\n", s);
                return 2;
            }
            char err[600];
            Intervention iv;
            if (!strcmp(s, "--intervene")) {
                /* syntax errors stop here, before any checkpoint is read */
                if (intervene_parse(&iv, argv[i + 1], err, sizeof err)) {
                    fprintf(stderr, "sinklab analyze: --intervene %s\n", err);
                    return 2;
                }
                if (a.n_specs >= MAX_SPECS) {
                    fprintf(stderr, "sinklab analyze: at most %d --intervene\n", MAX_SPECS);
                    return 2;
                }
                a.specs[a.n_specs++] = argv[++i];
            } else if (!strcmp(s, "--heads")) {
                if (intervene_parse_heads(a.heads, &a.n_heads, IV_MAX_TARGETS, argv[i + 1], err,
                                          sizeof err)) {
                    fprintf(stderr, "sinklab analyze: %s\n", err);
                    return 2;
                }
                i++;
            } else if (!strcmp(s, "--out")) a.out = argv[++i];
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
    return analyze_target(target, &a);
}
