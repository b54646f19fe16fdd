/* run_folder.c: creating, replacing and recognising run folders (see run_folder.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "train/run_folder.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

int run_folder_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --force only replaces what a run left (or an empty folder): `--out . --force` must not wipe a
 * source tree. */
int run_folder_is_run(const char *dir)
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

int run_folder_prepare(const char *dir, int replace, const Config *c, char *err, size_t n)
{
    if (replace && run_folder_is_run(dir) && nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        snprintf(err, n, "%s: cannot remove the old run", dir);
        return -1;
    }
    if (make_dirs(dir) != 0) {
        snprintf(err, n, "%s: cannot create the run folder", dir);
        return -1;
    }
    if (write_resolved_config(c, dir) != 0) {
        snprintf(err, n, "%s/config.yaml: cannot write", dir);
        return -1;
    }
    return 0;
}
