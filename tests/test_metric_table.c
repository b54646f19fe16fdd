/* test_metric_table.c: the metric table is the one source of probe metric names. Every entry is
 * complete, the README's metric tables are its generated output, every key a real run logs under
 * "probe" is in it, every entry is logged by some run, and the report of those runs draws every
 * metric they logged (its chart's title is on the page). */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/json.h"
#include "analysis/metric_table.h"

static void test_every_entry_is_complete_and_unique(void **state)
{
    for (int m = 0; m < METRIC_COUNT; m++) {
        const MetricDef *d = metric_def((MetricId)m);
        if (!d->name || !d->doc || !d->doc[0]) fail_msg("metric id %d has no name or description", m);
        if (metric_find(d->name) != (MetricId)m) fail_msg("%s: name used by two entries", d->name);
        if (d->chart == METRIC_CHART_NONE) fail_msg("%s: no chart draws it", d->name);
        if (!metric_chart_title(m)) fail_msg("%s: its chart has no title", d->name);
        if (d->chart == METRIC_CHART_MECHANICS || d->chart == METRIC_CHART_BY_POSITION)
            if (!d->ylabel || !d->caption) fail_msg("%s: a chart of its own needs a y label and a caption", d->name);
        if (d->chart == METRIC_CHART_TITLE_OF) {
            const MetricDef *h = metric_def(d->host);
            if (h->chart != METRIC_CHART_MECHANICS || (MetricId)m == d->host || !d->ylabel)
                fail_msg("%s: shown in the title of %s, which has no chart of its own", d->name, h->name);
        }
    }
    assert_int_equal(metric_find("no_such_metric"), METRIC_COUNT);
}

/* README "Watching sinks" holds exactly what metric_write_reference prints, for both tiers. */
static void test_readme_metric_tables_are_generated(void **state)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/README.md", test_src());
    char *doc = test_slurp(path, NULL);
    for (int tier = METRIC_TIER_LIGHT; tier <= METRIC_TIER_HEAVY; tier++) {
        char *ref = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&ref, &len);
        metric_write_reference(m, (MetricTier)tier);
        fclose(m);
        if (!strstr(doc, ref))
            fail_msg("%s: the %s metric table differs from the generated one "
                     "(`sinklab --metric-reference` prints both); want:\n%s", path,
                     tier == METRIC_TIER_LIGHT ? "light" : "heavy", ref);
        free(ref);
    }
    free(doc);
}

/* Trains tests/configs/tiny.yaml with extra settings into a fresh folder; returns its path. */
static void train_tiny(char *run, size_t cap, const char *tag, const char *sets)
{
    char dir[512], cmd[2048], out[8192];
    test_tmpdir(dir, sizeof dir, tag);
    snprintf(run, cap, "%s/run", dir);
    snprintf(cmd, sizeof cmd, "%s train %s/tests/configs/tiny.yaml --out %s --quiet %s", test_bin(), test_src(),
             run, sets);
    int rc = test_run(cmd, out, sizeof out);
    if (rc != 0) fail_msg("%s: exit %d: %.2000s", cmd, rc, out);
}

/* Marks in logged[] every key under "probe" in run/metrics.jsonl; fails on a key the table lacks. */
static void collect_probe_keys(const char *run, int *logged)
{
    char path[1100], err[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *text = test_slurp(path, NULL);
    int lineno = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        JsonDoc doc;
        if (json_parse(&doc, line, strlen(line), path, ++lineno, err, sizeof err)) fail_msg("%s", err);
        const JsonValue *probe = json_get(doc.root, "probe");
        for (int i = 0; probe && i < probe->n; i++) {
            MetricId m = metric_find(probe->items[i].key);
            if (m == METRIC_COUNT)
                fail_msg("%s:%d: probe.%s is logged but not in the metric table (no chart draws it)", path,
                         lineno, probe->items[i].key);
            logged[m] = 1;
        }
        json_free(&doc);
    }
    free(text);
}

/* The run's report has the figure that draws each metric the run logged. */
static void check_report_draws(const char *run, const int *logged)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/report.html", run);
    char *html = test_slurp(path, NULL);
    for (int m = 0; m < METRIC_COUNT; m++) {
        if (!logged[m]) continue;
        char h3[512];
        const MetricDef *d = metric_def((MetricId)m);
        if (d->chart == METRIC_CHART_TITLE_OF)
            snprintf(h3, sizeof h3, "<h3>%s (%s = ", metric_chart_title(m), d->ylabel);
        else if (d->chart == METRIC_CHART_ONSET_CELL || d->chart == METRIC_CHART_HEADS)
            snprintf(h3, sizeof h3, "<h3>%s</h3>", metric_chart_title(m));
        else
            snprintf(h3, sizeof h3, "<h3>%s", metric_chart_title(m));
        if (!strstr(html, h3)) fail_msg("%s: probe.%s is logged but the page has no \"%s\"", path, d->name, h3);
    }
    free(html);
}

/* Causal with BOS and a learned sink logs alpha_bos and alpha_learned_sink; bidirectional logs
 * alpha_last and no probe loss; bigram_backcopy logs the query-class metrics; checkpoints add
 * the heavy metrics. Together: every entry. */
static void test_logged_metrics_are_the_table_and_all_drawn(void **state)
{
    static const struct { const char *tag, *sets; } runs[] = {
        { "metrics_causal", "--set data.bos=window_start --set model.attention.sink=logit" },
        { "metrics_bidir", "--set model.kind=bidirectional --set data.mlm_prob=0.15 --set data.pack=pad" },
        { "metrics_classes", "--set data.corpus=bigram_backcopy --set data.bb.source=synthetic" },
    };
    int any[METRIC_COUNT] = { 0 };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        char run[600];
        int logged[METRIC_COUNT] = { 0 };
        train_tiny(run, sizeof run, runs[r].tag, runs[r].sets);
        collect_probe_keys(run, logged);
        check_report_draws(run, logged);
        for (int m = 0; m < METRIC_COUNT; m++) any[m] |= logged[m];
    }
    for (int m = 0; m < METRIC_COUNT; m++)
        if (!any[m]) fail_msg("probe.%s is in the metric table (the report reads it) but no run logged it",
                              metric_name((MetricId)m));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_entry_is_complete_and_unique),
        cmocka_unit_test(test_readme_metric_tables_are_generated),
        cmocka_unit_test(test_logged_metrics_are_the_table_and_all_drawn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
