/* cmd_export.c: `sinklab export RUN_OR_SWEEP_DIR... --csv [--out DIR]`: tidy scalars.csv and
 * heads.csv (analysis/export.h) for pandas. DIR defaults to the one folder given, else ".". */
#include <stdio.h>
#include <string.h>

#include "analysis/export.h"
#include "analysis/runset.h"
#include "train/commands.h"
#include "train/config_flat.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sinklab export RUN_OR_SWEEP_DIR... --csv [--out DIR]\n"
        "Writes DIR/scalars.csv (run, varying config keys, seed, step, tokens, metric, value) and\n"
        "DIR/heads.csv (run, ..., step, layer, head, metric, value). DIR: the folder given when\n"
        "there is one, else the current folder.\n");
}

int cmd_export(int argc, char **argv)
{
    const char *out = NULL;
    int csv = 0, n_paths = 0;
    const char *paths[256];
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--csv")) {
            csv = 1;
        } else if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sinklab export: --out needs a folder\n");
                return 2;
            }
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "sinklab export: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (n_paths < 256) {
            paths[n_paths++] = argv[i];
        }
    }
    if (!n_paths || !csv) {
        if (n_paths && !csv) fprintf(stderr, "sinklab export: name the format (--csv)\n");
        usage(stderr);
        return 2;
    }
    RunSet rs;
    memset(&rs, 0, sizeof rs);
    rs.read_config = config_flatten_run;
    char err[1024];
    for (int i = 0; i < n_paths; i++)
        if (runset_add(&rs, paths[i], err, sizeof err) != 0) {
            fprintf(stderr, "sinklab export: %s\n", err);
            runset_free(&rs);
            return 2;
        }
    runset_finish(&rs);
    if (!out) out = n_paths == 1 ? paths[0] : ".";
    int rc = export_csv(&rs, out, err, sizeof err);
    if (rc) fprintf(stderr, "sinklab export: %s\n", err);
    else printf("%s/scalars.csv\n%s/heads.csv\n", out, out);
    runset_free(&rs);
    return rc ? 1 : 0;
}
