/* claim_report.h: the reproduction report: REPORT.md (for the repository and a terminal) and
 * report.html (with a figure per claim), both from the same numbers. */
#ifndef SINKLAB_CLAIM_REPORT_H
#define SINKLAB_CLAIM_REPORT_H

#include "analysis/claim.h"

typedef struct {
    const char *scale;
    const char *command;      /* the command line that produced it */
    const char *commit;       /* git commit of the source, or "unknown" */
    const char *date;         /* UTC */
    const char *machine;      /* e.g. "2 cores" */
} ReproduceInfo;

/* Writes DIR/REPORT.md and DIR/report.html. Returns 0 or -1 with err. */
int claim_report_write(const char *dir, const ReproduceInfo *info, const Claim *claims,
                       const ClaimResult *results, int n, char *err, size_t n_err);

#endif
