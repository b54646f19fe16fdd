/* model_kind.c: the config names of ModelKind (model_kind.h). */
#include "base/model_kind.h"

#include <stddef.h>

const char *const MODEL_KIND_NAMES[] = {
    [MODEL_CAUSAL] = "causal",
    [MODEL_BIDIRECTIONAL] = "bidirectional",
    [MODEL_PREFIX_LM] = "prefix_lm",
    NULL,
};
