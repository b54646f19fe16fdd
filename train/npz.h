/* npz.h: the checkpoint container, a .npz-compatible ZIP of stored (uncompressed) .npy v1.0
 * members that numpy.load reads. Every member carries its CRC32, and the ZIP comment carries the
 * CRC32 of the central directory, so every byte except the 22-byte end record is checked on read.
 * The writer's bytes depend only on what is written (fixed timestamps). What goes into a
 * checkpoint, and how it is named and replaced, is train/checkpoint.c's business. */
#ifndef SINKLAB_NPZ_H
#define SINKLAB_NPZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NPZ_NAME_MAX 160

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct {
    char name[NPZ_NAME_MAX + 8];      /* with ".npy" */
    uint32_t crc, size, offset;
} NpzEntry;

/* Writes members to an open file in one pass. failed holds the first errno (EFBIG past the 4 GB
 * ZIP32 limit); once set, nothing more is written. */
typedef struct {
    FILE *f;
    uint64_t pos;
    NpzEntry *e;
    int n, cap;
    int failed;
} NpzWriter;

/* A writer for at most max_members members onto f (the caller opens and closes f). */
void npz_writer_init(NpzWriter *z, FILE *f, int max_members);
/* Member NAME.npy: a C-order array of dtype descr ("<f4", "<i8", "|u1", ...) and the given
 * shape, whose nbytes raw bytes are at data. */
void npz_write_array(NpzWriter *z, const char *name, const char *descr, int ndim,
                     const int64_t *shape, const void *data, size_t nbytes);
/* The central directory and the end record with its CRC comment; then z->failed is final. */
void npz_write_finish(NpzWriter *z);
void npz_writer_free(NpzWriter *z);

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct {
    char name[NPZ_NAME_MAX];          /* without ".npy" */
    const unsigned char *data;
    size_t size;
} NpzMember;

/* A whole file in memory with its members located and checked. */
typedef struct {
    unsigned char *buf;
    size_t len;
    NpzMember *m;
    int n;
} NpzArchive;

/* A parsed .npy member; data points into the archive. */
typedef struct {
    char descr[8];
    int ndim;
    int64_t shape[8];
    const unsigned char *data;
    size_t nbytes;
} NpyView;

/* Reads path and checks the end record, the signature comment, the central directory's CRC and
 * every member's CRC. Returns 0, or -1 with "PATH: ..." in err (call npz_close either way). */
int npz_open(NpzArchive *a, const char *path, char *err, size_t n);
void npz_close(NpzArchive *a);
const NpzMember *npz_find(const NpzArchive *a, const char *name);
/* Member name as a .npy array of dtype descr; -1 with "PATH: section 'NAME' ..." otherwise. */
int npz_array(NpyView *v, const NpzArchive *a, const char *name, const char *descr,
              const char *path, char *err, size_t n);

#endif
