/* cmd_train.c: `sinklab train CONFIG [--set k=v ...] [--out DIR] [--resume] [--force] [--quiet]`.
 * Resolves the config, prepares the run folder (never overwriting an earlier run unless asked)
 * and hands over to the trainer. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "train/commands.h"
#include "train/config.h"
#include "train/trainer.h"

#define MAX_SETS 128

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sinklab train CONFIG.yaml [--set key.path=value ...] [--out DIR] [--resume] [--force] [--quiet]\n"
        "\n"
        "Trains the model CONFIG describes and writes a run folder (default runs/<config name>):\n"
        "config.yaml (resolved), metrics.jsonl, log.txt, checkpoints/, probe/, report.html.\n"
        "  --set k=v   override any config key (same dotted names as the YAML), repeatable\n"
        "  --out DIR   the run folder\n"
        "  --resume    continue the run in DIR from its newest intact checkpoint\n"
        "  --force     replace an existing run folder\n"
        "  --quiet     no console output (log.txt is still written)\n");
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --force only replaces what a run left (or an empty folder): `--out . --force` must not wipe a
 * source tree. */
static int is_run_folder(const char *dir)
{
    const char *marks[] = {"config.yaml", "metrics.jsonl", "checkpoints"};
    char path[1200];
    struct stat st;
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, marks[i]);
        if (stat(path, &st) == 0) return 1;
    }
    DIR *d = opendir(dir);
    if (!d) return 0;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* Loads CONFIG, applies the --set overrides in order, validates. Shared with `sinklab data`. */
int cli_load_config(Config *c, const char *path, char **sets, int n_sets, const char *cmd)
{
    char err[1024];
    config_defaults(c);
    if (config_load(c, path, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab %s: %s\n", cmd, err);
        return 2;
    }
    for (int i = 0; i < n_sets; i++)
        if (config_set(c, sets[i], err, sizeof err) != 0) {
            fprintf(stderr, "sinklab %s: %s\n", cmd, err);   /* err names the --set */
            return 2;
        }
    if (config_validate(c, err, sizeof err) != 0) {
        fprintf(stderr, "sinklab %s: %s\n", cmd, err);
        return 2;
    }
    return 0;
}

static int write_resolved_config(const Config *c, const char *dir)
{
    char path[1100], tmp[1120];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    config_write(c, f);
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}

int cmd_train(int argc, char **argv)
{
    const char *config_path = NULL, *out = NULL;
    char *sets[MAX_SETS];
    int n_sets = 0, resume = 0, force = 0, quiet = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--set") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sinklab train: %s needs a value\n", a);
                return 2;
            }
            if (!strcmp(a, "--out")) out = argv[++i];
            else if (n_sets < MAX_SETS) sets[n_sets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6) && n_sets < MAX_SETS) {
            sets[n_sets++] = (char *)a + 6;
        } else if (!strcmp(a, "--resume")) {
            resume = 1;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "sinklab train: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!config_path) {
            config_path = a;
        } else {
            fprintf(stderr, "sinklab train: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!config_path) {
        usage(stderr);
        return 2;
    }
    if (resume && force) {
        fprintf(stderr, "sinklab train: --resume and --force exclude each other\n");
        return 2;
    }
    static Config cfg;
    int rc = cli_load_config(&cfg, config_path, sets, n_sets, "train");
    if (rc) return rc;
    char dir[sizeof cfg.output.dir];
    if (out) snprintf(dir, sizeof dir, "%s", out);
    else config_run_dir(&cfg, dir, sizeof dir);
    memcpy(cfg.output.dir, dir, sizeof dir);

    int exists = dir_exists(dir);
    if (resume && !exists) {
        fprintf(stderr, "sinklab train: %s: no run to resume\n", dir);
        return 2;
    }
    if (exists && !resume) {
        if (!force) {
            fprintf(stderr, "sinklab train: %s already exists; use --resume to continue it or "
                    "--force to replace it\n", dir);
            return 2;
        }
        if (!is_run_folder(dir)) {
            fprintf(stderr, "sinklab train: %s is not a run folder (no config.yaml, metrics.jsonl "
                    "or checkpoints/); --force will not remove it\n", dir);
            return 2;
        }
        if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
            fprintf(stderr, "sinklab train: %s: cannot remove the old run\n", dir);
            return 1;
        }
    }
    if (make_dirs(dir) != 0) {
        fprintf(stderr, "sinklab train: %s: cannot create the run folder\n", dir);
        return 1;
    }
    if (!resume && write_resolved_config(&cfg, dir) != 0) {
        fprintf(stderr, "sinklab train: %s/config.yaml: cannot write\n", dir);
        return 1;
    }
    TrainOptions opt = {.run_dir = dir, .resume = resume, .quiet = quiet};
    return trainer_run(&cfg, &opt);
}
