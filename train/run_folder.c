/* run_folder.c: creating, locking, replacing and recognising run folders (see run_folder.h). */
#define _GNU_SOURCE /* nftw, renameat2 */
#include "train/run_folder.h"

#include "base/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p */
int run_folder_make(const char *path)
{
    return files_mkdirs(path);
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
int run_folder_has_marks(const char *dir)
{
    const char *marks[] = {"config.yaml", "metrics.jsonl", "checkpoints"};
    char path[1200];
    struct stat st;
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, marks[i]);
        if (stat(path, &st) == 0) return 1;
    }
    return 0;
}

int run_folder_is_run(const char *dir)
{
    if (run_folder_has_marks(dir)) return 1;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
                !strcmp(e->d_name, RUN_LOCK_NAME);
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
    if (files_mkdirs(dir) != 0) {
        snprintf(err, n, "%s: cannot create the run folder", dir);
        return -1;
    }
    if (write_resolved_config(c, dir) != 0) {
        snprintf(err, n, "%s/config.yaml: cannot write", dir);
        return -1;
    }
    return 0;
}

/* ---- the lock: DIR/.lock, flock'ed for the whole run, holding the owner's pid ---- */

static long lock_holder(int fd)
{
    char buf[32] = "";
    ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
    return k > 0 ? strtol(buf, NULL, 10) : 0;
}

int run_folder_lock(RunLock *l, const char *dir, char *err, size_t n)
{
    l->fd = -1;
    snprintf(l->path, sizeof l->path, "%s/%s", dir, RUN_LOCK_NAME);
    int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        snprintf(err, n, "%s: cannot create the run lock (%s)", l->path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = lock_holder(fd);
        close(fd);
        if (e == EWOULDBLOCK) {
            char who[48] = "another process";
            if (pid > 0) snprintf(who, sizeof who, "process %ld", pid);
            snprintf(err, n, "%s is in use by %s (lock %s); wait for it to finish or stop it",
                     dir, who, l->path);
        } else {
            snprintf(err, n, "%s: cannot lock (%s)", l->path, strerror(e));
        }
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* the pid is only for messages; the flock is what counts */
    }
    l->fd = fd;
    return 0;
}

void run_folder_unlock(RunLock *l)
{
    if (l->fd >= 0) close(l->fd);   /* closing releases the flock */
    l->fd = -1;
}

int run_folder_has_checkpoint(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    int found = 0;
    long long s;
    for (struct dirent *e; !found && (e = readdir(d));)
        found = sscanf(e->d_name, "step_%lld.ckpt", &s) == 1 && !strstr(e->d_name, ".tmp");
    closedir(d);
    return found;
}

int run_folder_remove(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int run_folder_stage(const char *dir, char *staged, size_t n_staged, RunLock *l, char *err, size_t n)
{
    snprintf(staged, n_staged, "%s%s%ld", dir, RUN_STAGE_SUFFIX, (long)getpid());
    if (run_folder_exists(staged)) run_folder_remove(staged);
    if (files_mkdirs(staged) != 0) {
        snprintf(err, n, "%s: cannot create the replacement run folder (%s)", staged, strerror(errno));
        return -1;
    }
    return run_folder_lock(l, staged, err, n);
}

int run_folder_swap_in(const char *staged, const char *dir, char *err, size_t n)
{
    /* one atomic exchange: a kill leaves either the old run or the new one at DIR */
    if (renameat2(AT_FDCWD, staged, AT_FDCWD, dir, RENAME_EXCHANGE) != 0) {
        snprintf(err, n, "%s: cannot swap in the new run from %s (%s)", dir, staged, strerror(errno));
        return -1;
    }
    if (run_folder_remove(staged) != 0) {
        snprintf(err, n, "%s: the earlier run could not be removed (%s)", staged, strerror(errno));
        return -1;
    }
    return 0;
}

void run_folder_clean_stale(const char *dir)
{
    char parent[1100], base[1200];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash[1] == 0) return;   /* "runs/x/": not worth the guessing */
    snprintf(base, sizeof base, "%s%s", slash ? slash + 1 : parent, RUN_STAGE_SUFFIX);
    if (slash) *slash = 0;
    else snprintf(parent, sizeof parent, ".");
    if (slash && !parent[0]) snprintf(parent, sizeof parent, "/");
    DIR *d = opendir(parent);
    if (!d) return;
    size_t nb = strlen(base);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, base, nb) != 0) continue;
        char path[2300], why[256];
        snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        RunLock l;
        /* a sibling whose lock is free was left by a killed --force (its build or the old run) */
        if (run_folder_lock(&l, path, why, sizeof why) == 0) {
            run_folder_remove(path);
            run_folder_unlock(&l);
        }
    }
    closedir(d);
}
