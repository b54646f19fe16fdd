/* cmd_compare.c: `sinklab compare RUN_OR_SWEEP_DIR... [--by KEY] [--out DIR]`: the comparison
 * page (analysis/compare.h). DIR defaults to the one folder given, else ".". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/compare.h"
#include "analysis/runset.h"
#include "train/commands.h"
#include "train/config.h"
#include "train/config_flat.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sinklab compare RUN_OR_SWEEP_DIR... [--by KEY] [--head L.H ...] [--out DIR]\n"
        "Writes DIR/compare.html: loss and alpha0 against tokens per run; grouped by KEY (default:\n"
        "the first config key that differs between the runs, train.seed aside) the mean across\n"
        "seeds with a 95%% bootstrap interval; onset per run; final metrics with intervals; the\n"
        "config differences. --head L.H (up to 4) adds alpha0 of that layer's head.\n"
        "DIR: the folder given when there is one, else the current folder.\n");
}

/* How each run's config differs from the first run's (config_diff on the loaded configs, the
 * run folder and thread count aside); NULL entries where a config does not load. */
static char **config_diffs(const RunSet *rs)
{
    char **out = calloc((size_t)rs->n, sizeof *out);
    static Config first, other;
    char err[512], path[1100];
    if (!out || rs->n == 0) return out;
    snprintf(path, sizeof path, "%s/config.yaml", rs->runs[0].dir);
    config_defaults(&first);
    if (config_load(&first, path, err, sizeof err) != 0) return out;
    for (int i = 1; i < rs->n; i++) {
        snprintf(path, sizeof path, "%s/config.yaml", rs->runs[i].dir);
        config_defaults(&other);
        if (config_load(&other, path, err, sizeof err) != 0) continue;
        memcpy(other.output.dir, first.output.dir, sizeof other.output.dir);
        memcpy(other.source, first.source, sizeof other.source);
        other.train.threads = first.train.threads;
        out[i] = malloc(2048);
        if (!out[i]) continue;
        if (config_diff(&first, &other, out[i], 2048) == 0) snprintf(out[i], 2048, "(same config)");
    }
    return out;
}

int cmd_compare(int argc, char **argv)
{
    const char *out = NULL, *by = NULL;
    int n_paths = 0;
    const char *paths[256];
    RunSet rs;
    memset(&rs, 0, sizeof rs);
    rs.read_config = config_flatten_run;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--by") || !strcmp(argv[i], "--head")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sinklab compare: %s needs a value\n", argv[i]);
                return 2;
            }
            if (!strcmp(argv[i], "--out")) out = argv[++i];
            else if (!strcmp(argv[i], "--by")) by = argv[++i];
            else {
                int l, h, used = 0;
                const char *v = argv[++i];
                if (sscanf(v, "%d.%d%n", &l, &h, &used) != 2 || v[used] || l < 0 || h < 0) {
                    fprintf(stderr, "sinklab compare: --head %s: expected LAYER.HEAD, e.g. 1.0\n", v);
                    return 2;
                }
                if (runset_choose_head(&rs, l, h) != 0) {
                    fprintf(stderr, "sinklab compare: --head: at most %d heads\n", RUNSET_MAX_HEADS);
                    return 2;
                }
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "sinklab compare: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (n_paths < 256) {
            paths[n_paths++] = argv[i];
        }
    }
    if (!n_paths) {
        usage(stderr);
        return 2;
    }
    char err[1024];
    for (int i = 0; i < n_paths; i++)
        if (runset_add(&rs, paths[i], err, sizeof err) != 0) {
            fprintf(stderr, "sinklab compare: %s\n", err);
            runset_free(&rs);
            return 2;
        }
    runset_finish(&rs);
    if (by && rs.n && !run_config(&rs.runs[0], by)) {
        fprintf(stderr, "sinklab compare: --by %s: not a config key of %s\n", by, rs.runs[0].dir);
        runset_free(&rs);
        return 2;
    }
    if (!out) out = n_paths == 1 ? paths[0] : ".";
    char path[1200];
    snprintf(path, sizeof path, "%s/compare.html", out);
    char **diffs = config_diffs(&rs);
    int rc = compare_write(&rs, by, (const char *const *)diffs, path, err, sizeof err);
    for (int i = 0; diffs && i < rs.n; i++) free(diffs[i]);
    free(diffs);
    if (rc) fprintf(stderr, "sinklab compare: %s\n", err);
    else printf("%s\n", path);
    runset_free(&rs);
    return rc ? 1 : 0;
}
