/* checkpoint.c: what a checkpoint holds and how it is kept (see checkpoint.h and the README
 * ("Checkpoints")): the members and their order, the format version and the checks a reader
 * needs beyond the container's CRCs, the atomic replace, the run folder's step_N.ckpt files and
 * `latest`, and the schedule. The ZIP/.npy container itself is train/npz.c. */
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/npz.h"

static void write_members(NpzWriter *z, const ParamBlock *pb, const char *config_yaml,
                          const CkptState *st)
{
    int32_t version = CKPT_FORMAT_VERSION;
    int64_t one = 1, len = (int64_t)strlen(config_yaml), four = 4, nstate = CKPT_STATE_LEN;
    int64_t state[CKPT_STATE_LEN] = {st->step, st->tokens_seen, st->data_pos, st->data_epoch};
    memcpy(state + 4, st->extra, sizeof st->extra);
    npz_write_array(z, "format", "<i4", 1, &one, &version, sizeof version);
    npz_write_array(z, "config", "|u1", 1, &len, config_yaml, (size_t)len);
    npz_write_array(z, "state", "<i8", 1, &nstate, state, sizeof state);
    npz_write_array(z, "rng", "<u8", 1, &four, st->rng, sizeof st->rng);
    static const char *const kinds[3] = {"param", "adam_m", "adam_v"};
    const float *arrays[3] = {pb->data, pb->m, pb->v};
    for (int a = 0; a < 3; a++) {
        if (!arrays[a]) continue;   /* a weights-only checkpoint */
        for (int i = 0; i < pb->n_params; i++) {
            const Param *p = &pb->params[i];
            char name[NPZ_NAME_MAX];
            int64_t shape[TENSOR_MAX_DIM];
            for (int d = 0; d < p->t.ndim; d++) shape[d] = p->t.shape[d];
            snprintf(name, sizeof name, "%s/%s", kinds[a], p->name);
            npz_write_array(z, name, "<f4", p->t.ndim, shape, arrays[a] + p->offset,
                            p->t.size * sizeof(float));
        }
    }
    npz_write_finish(z);
}

/* fsync of the folder holding path, so the rename itself is durable. */
static int fsync_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes PATH.tmp with fill() (which returns 0 or the errno of a failed write), fsyncs, renames
 * over path, fsyncs the folder. */
static int write_atomic(const char *path, int (*fill)(FILE *, const void *), const void *ctx,
                        char *err, size_t n)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        sl_errf(err, n, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        sl_errf(err, n, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    errno = 0;
    int failed = fill(f, ctx);
    if (!failed && fflush(f) != 0) failed = errno ? errno : EIO;
    if (!failed && fsync(fileno(f)) != 0) failed = errno;
    if (fclose(f) != 0 && !failed) failed = errno ? errno : EIO;
    if (failed) {
        sl_errf(err, n, "%s: write failed: %s (the previous %s is untouched)", tmp,
                strerror(failed), path);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        sl_errf(err, n, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (fsync_parent(path) != 0) {
        sl_errf(err, n, "%s: cannot fsync its folder: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct {
    const ParamBlock *pb;
    const char *config_yaml;
    const CkptState *st;
} SaveCtx;

static int fill_ckpt(FILE *f, const void *ctx)
{
    const SaveCtx *c = ctx;
    NpzWriter z;
    npz_writer_init(&z, f, 4 + 3 * c->pb->n_params);
    write_members(&z, c->pb, c->config_yaml, c->st);
    npz_writer_free(&z);
    return z.failed;
}

int ckpt_save(const char *path, const ParamBlock *pb, const char *config_yaml,
              const CkptState *st, char *err, size_t n)
{
    SL_CHECK(pb->finalized, "ckpt_save: parameter block not finalized");
    SaveCtx c = {pb, config_yaml ? config_yaml : "", st};
    return write_atomic(path, fill_ckpt, &c, err, n);
}

/* ---- reading ---------------------------------------------------------------------------- */

/* The checks every reader needs: CRCs, the version, and the non-parameter members. */
static int open_checked(NpzArchive *a, const char *path, char *err, size_t n)
{
    if (npz_open(a, path, err, n) != 0) return -1;
    NpyView v;
    if (npz_array(&v, a, "format", "<i4", path, err, n) != 0) return -1;
    int32_t version;
    if (v.nbytes < 4) {
        sl_errf(err, n, "%s: section 'format' is empty", path);
        return -1;
    }
    memcpy(&version, v.data, 4);
    if (version != CKPT_FORMAT_VERSION) {
        sl_errf(err, n, "%s: checkpoint format version %d, this sinklab reads version %d", path,
                (int)version, CKPT_FORMAT_VERSION);
        return -1;
    }
    if (npz_array(&v, a, "config", "|u1", path, err, n) != 0) return -1;
    if (npz_array(&v, a, "rng", "<u8", path, err, n) != 0) return -1;
    if (v.nbytes != 4 * sizeof(uint64_t)) {
        sl_errf(err, n, "%s: section 'rng' holds %zu values, expected 4", path, v.nbytes / 8);
        return -1;
    }
    if (npz_array(&v, a, "state", "<i8", path, err, n) != 0) return -1;
    if (v.nbytes < 4 * sizeof(int64_t)) {
        sl_errf(err, n, "%s: section 'state' holds %zu values, expected at least 4", path,
                v.nbytes / 8);
        return -1;
    }
    return 0;
}

int ckpt_verify(const char *path, char *err, size_t n)
{
    NpzArchive a;
    int rc = open_checked(&a, path, err, n);
    npz_close(&a);
    return rc;
}

int ckpt_read_config(const char *path, char **config_yaml, char *err, size_t n)
{
    NpzArchive a;
    *config_yaml = NULL;
    NpyView v;
    if (open_checked(&a, path, err, n) != 0 ||
        npz_array(&v, &a, "config", "|u1", path, err, n) != 0) {
        npz_close(&a);
        return -1;
    }
    char *s = xmalloc(v.nbytes + 1);
    memcpy(s, v.data, v.nbytes);
    s[v.nbytes] = 0;
    *config_yaml = s;
    npz_close(&a);
    return 0;
}

static const char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* Checks that member KIND/<name> exists for every parameter with its exact shape, and that the
 * file holds no KIND/ member the model lacks. */
static int check_kind(const NpzArchive *a, const ParamBlock *pb, const char *kind, const char *path,
                      char *err, size_t n)
{
    for (int i = 0; i < pb->n_params; i++) {
        const Param *p = &pb->params[i];
        char name[NPZ_NAME_MAX], want[96], got[96];
        snprintf(name, sizeof name, "%s/%s", kind, p->name);
        NpyView v;
        if (!npz_find(a, name)) {
            sl_errf(err, n, "%s: section '%s' missing: the model has this parameter, the "
                    "checkpoint does not (different model config?)", path, name);
            return -1;
        }
        if (npz_array(&v, a, name, "<f4", path, err, n) != 0) return -1;
        int64_t ps[TENSOR_MAX_DIM];
        int same = v.ndim == p->t.ndim;
        for (int d = 0; d < p->t.ndim; d++) {
            ps[d] = p->t.shape[d];
            if (same && v.shape[d] != ps[d]) same = 0;
        }
        if (!same) {
            sl_errf(err, n, "%s: section '%s' has shape %s, the model expects %s (different "
                    "model config?)", path, name, shape_str(got, sizeof got, v.ndim, v.shape),
                    shape_str(want, sizeof want, p->t.ndim, ps));
            return -1;
        }
    }
    size_t kl = strlen(kind);
    for (int i = 0; i < a->n; i++) {
        const char *mn = a->m[i].name;
        if (strncmp(mn, kind, kl) == 0 && mn[kl] == '/' && !params_find(pb, mn + kl + 1)) {
            sl_errf(err, n, "%s: section '%s' is not a parameter of this model (different model "
                    "config?)", path, mn);
            return -1;
        }
    }
    return 0;
}

static void copy_kind(float *dst, const NpzArchive *a, const ParamBlock *pb, const char *kind)
{
    for (int i = 0; i < pb->n_params; i++) {
        const Param *p = &pb->params[i];
        char name[NPZ_NAME_MAX];
        snprintf(name, sizeof name, "%s/%s", kind, p->name);
        NpyView v;
        SL_CHECK(npz_array(&v, a, name, "<f4", "", NULL, 0) == 0, "%s vanished", name);
        memcpy(dst + p->offset, v.data, v.nbytes);
    }
}

static void read_state(CkptState *st, const NpzArchive *a)
{
    NpyView v;
    SL_CHECK(npz_array(&v, a, "state", "<i8", "", NULL, 0) == 0, "state vanished");
    int64_t s[CKPT_STATE_LEN] = {0};
    size_t k = v.nbytes < sizeof s ? v.nbytes : sizeof s;
    memcpy(s, v.data, k);
    memset(st, 0, sizeof *st);
    st->step = s[0];
    st->tokens_seen = s[1];
    st->data_pos = s[2];
    st->data_epoch = s[3];
    memcpy(st->extra, s + 4, sizeof st->extra);
    SL_CHECK(npz_array(&v, a, "rng", "<u8", "", NULL, 0) == 0, "rng vanished");
    memcpy(st->rng, v.data, sizeof st->rng);
}

int ckpt_load(const char *path, ParamBlock *pb, CkptState *st, int with_optimizer,
              char *err, size_t n)
{
    SL_CHECK(pb->finalized, "ckpt_load: parameter block not finalized");
    NpzArchive a;
    int rc = open_checked(&a, path, err, n);
    if (rc == 0) rc = check_kind(&a, pb, "param", path, err, n);
    if (rc == 0 && with_optimizer) {
        int has_moments = 0;
        for (int i = 0; i < a.n; i++) has_moments |= strncmp(a.m[i].name, "adam_", 5) == 0;
        if (!has_moments) {
            sl_errf(err, n, "%s: holds the weights only, without the optimizer moments that "
                    "resuming needs (checkpoint.optimizer_state: latest keeps them in the newest "
                    "checkpoint only; all keeps them in every one)", path);
            rc = -1;
        }
    }
    if (rc == 0 && with_optimizer) rc = check_kind(&a, pb, "adam_m", path, err, n);
    if (rc == 0 && with_optimizer) rc = check_kind(&a, pb, "adam_v", path, err, n);
    if (rc == 0) {
        copy_kind(pb->data, &a, pb, "param");
        if (with_optimizer) {
            copy_kind(pb->m, &a, pb, "adam_m");
            copy_kind(pb->v, &a, pb, "adam_v");
        }
        if (st) read_state(st, &a);
    }
    npz_close(&a);
    return rc;
}

/* ---- run folder ------------------------------------------------------------------------- */

void ckpt_path(char *out, size_t n, const char *run_dir, int64_t step)
{
    snprintf(out, n, "%s/checkpoints/step_%07" PRId64 ".ckpt", run_dir, step);
}

int ckpt_ensure_dir(const char *run_dir, char *err, size_t n)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        sl_errf(err, n, "%s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int fill_text(FILE *f, const void *ctx)
{
    size_t len = strlen(ctx);
    return fwrite(ctx, 1, len, f) == len ? 0 : (errno ? errno : EIO);
}

int ckpt_write_latest(const char *run_dir, int64_t step, char *err, size_t n)
{
    char path[4096], line[64];
    snprintf(path, sizeof path, "%s/checkpoints/latest", run_dir);
    snprintf(line, sizeof line, "step_%07" PRId64 ".ckpt\n", step);
    return write_atomic(path, fill_text, line, err, n);
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Steps of all step_N.ckpt files in dir, newest first; returns the count (*steps malloc'd). */
static int list_steps(const char *dir, int64_t **steps)
{
    *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int cnt = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        long long s;
        int used = 0;
        if (sscanf(de->d_name, "step_%lld.ckpt%n", &s, &used) == 1 && used > 0 &&
            de->d_name[used] == 0 && s >= 0) {
            if (cnt == cap) {
                cap = cap ? 2 * cap : 64;
                int64_t *g = realloc(*steps, (size_t)cap * sizeof **steps);
                SL_CHECK(g, "out of memory listing %s", dir);
                *steps = g;
            }
            (*steps)[cnt++] = s;
        }
    }
    closedir(d);
    if (cnt) qsort(*steps, (size_t)cnt, sizeof **steps, cmp_desc);
    return cnt;
}

int ckpt_find_latest(const char *run_dir, char *path_out, size_t n_out,
                     char *note, size_t n_note, char *err, size_t n_err)
{
    char dir[4096], lpath[4096 + 16], named[4096 + 300] = "", why[1024] = "";
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    snprintf(lpath, sizeof lpath, "%s/latest", dir);
    sl_errf(note, n_note, "%s", "");
    FILE *f = fopen(lpath, "r");
    if (f) {
        char line[256] = "";
        if (fgets(line, sizeof line, f)) line[strcspn(line, "\r\n")] = 0;
        fclose(f);
        if (line[0] && !strchr(line, '/')) {
            snprintf(named, sizeof named, "%s/%s", dir, line);
            if (ckpt_verify(named, why, sizeof why) == 0) {
                sl_errf(path_out, n_out, "%s", named);
                return 0;
            }
        } else {
            sl_errf(why, sizeof why, "%s: does not name a checkpoint file", lpath);
        }
    } else {
        sl_errf(why, sizeof why, "%s: missing", lpath);
    }
    int64_t *steps;
    int cnt = list_steps(dir, &steps);
    for (int i = 0; i < cnt; i++) {
        char cand[4096 + 32], cwhy[1024];
        snprintf(cand, sizeof cand, "%s/step_%07" PRId64 ".ckpt", dir, steps[i]);
        if (!strcmp(cand, named)) continue;
        if (ckpt_verify(cand, cwhy, sizeof cwhy) == 0) {
            sl_errf(path_out, n_out, "%s", cand);
            sl_errf(note, n_note, "%s; newest intact: %s", why, strrchr(cand, '/') + 1);
            free(steps);
            return 0;
        }
    }
    free(steps);
    sl_errf(err, n_err, "%s: no intact checkpoint (%d file%s checked; %s)", dir, cnt,
            cnt == 1 ? "" : "s", why);
    return -1;
}

int ckpt_drop_optimizer(const char *path, const ParamBlock *pb, char *err, size_t n)
{
    if (access(path, F_OK) != 0) return 0;
    /* the model's layout over a scratch copy of the values, without moments */
    ParamBlock w = *pb;
    w.data = xmalloc(pb->n * sizeof(float));
    w.grad = w.m = w.v = NULL;
    char *yaml = NULL;
    CkptState st;
    int rc = ckpt_read_config(path, &yaml, err, n);
    if (rc == 0) rc = ckpt_load(path, &w, &st, 0, err, n);
    if (rc == 0) rc = ckpt_save(path, &w, yaml, &st, err, n);
    free(w.data);
    free(yaml);
    return rc;
}

int ckpt_scheduled(int64_t step, int64_t total_steps, int every, int log_spaced)
{
    if (step == total_steps) return 1;
    if (every > 0 && step > 0 && step % every == 0) return 1;
    if (!log_spaced) return 0;
    if (step == 0) return 1;
    /* 1-2-5 series from 10: step = d * 10^k with d in {1, 2, 5}, k >= 1. */
    int64_t s = step;
    int k = 0;
    while (s % 10 == 0) { s /= 10; k++; }
    return k >= 1 && (s == 1 || s == 2 || s == 5);
}
