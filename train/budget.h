/* budget.h: the memory a resolved config needs (parameters with optimizer state, the step arena,
 * the corpus, the probe set), estimated before anything is allocated and checked against
 * train.memory_limit (README "Reliability"). Estimates are in double precision, so no product
 * of config values can overflow; a config that passes keeps every later size_t product far from
 * overflow. */
#ifndef SINKLAB_BUDGET_H
#define SINKLAB_BUDGET_H

#include <stddef.h>
#include <stdint.h>
#include "train/config.h"

enum { BUDGET_MAX_ITEMS = 8 };

typedef struct {
    const char *what;        /* "parameters + AdamW state" */
    const char *keys;        /* the keys that size it */
    double bytes;
} BudgetItem;

typedef struct {
    BudgetItem item[BUDGET_MAX_ITEMS];
    int n;
    double total;            /* sum of the items */
    double limit;            /* train.memory_limit, or MemAvailable when auto */
    int limit_auto;
} Budget;

/* MemAvailable from /proc/meminfo in bytes (0 when unreadable). */
uint64_t budget_available_memory(void);
/* Fills b from c (resolved and validated). */
void budget_compute(Budget *b, const Config *c);
/* 0 when b fits its limit; else -1 with err naming the largest items, their keys and bytes. */
int budget_check(const Budget *b, char *err, size_t n);
/* Bytes of corpus text a files/fortunes/brown corpus may hold: what the limit leaves after the
 * other items, divided by the memory a text byte costs once tokenized. */
int64_t budget_corpus_text_cap(const Budget *b);
/* "1.5 GB" */
void budget_format_bytes(char *out, size_t n, double bytes);

#endif
