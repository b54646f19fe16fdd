/* test_layers.c: the folder layering the README's architecture section states is the one the
 * code has. The allowed include directions are read from the README (between the
 * include-rules markers), and every #include "layer/..." line of every .c/.h file in a layer
 * folder is checked against them, so an upward or sideways include fails here. */
#include "tests/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 16

typedef struct {
    char name[32];
    char allowed[MAX_LAYERS][32];
    int n_allowed;
} Layer;

static Layer layers[MAX_LAYERS];
static int n_layers;

static Layer *find_layer(const char *name)
{
    for (int i = 0; i < n_layers; i++)
        if (!strcmp(layers[i].name, name)) return &layers[i];
    return NULL;
}

/* Lines "    layer: may include a, b" between the markers. */
static void read_rules(void)
{
    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/README.md", test_src());
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: cannot open", path);
    int inside = 0;
    n_layers = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "<!-- include-rules -->")) { inside = 1; continue; }
        if (strstr(line, "<!-- /include-rules -->")) break;
        if (!inside) continue;
        char *colon = strchr(line, ':');
        if (!colon || n_layers == MAX_LAYERS) continue;
        Layer *l = &layers[n_layers++];
        memset(l, 0, sizeof *l);
        *colon = 0;
        sscanf(line, " %31s", l->name);
        char *rest = strstr(colon + 1, "may include");
        if (!rest) fail_msg("README include rule for %s: expected 'may include ...'", l->name);
        for (char *tok = strtok(rest + strlen("may include"), " ,\n"); tok;
             tok = strtok(NULL, " ,\n"))
            if (strcmp(tok, "nothing") && l->n_allowed < MAX_LAYERS)
                snprintf(l->allowed[l->n_allowed++], 32, "%s", tok);
    }
    fclose(f);
    if (n_layers < 5) fail_msg("README: found %d include rules, expected one per layer", n_layers);
}

static int allowed(const Layer *from, const char *to)
{
    if (!strcmp(from->name, to)) return 1;
    for (int i = 0; i < from->n_allowed; i++)
        if (!strcmp(from->allowed[i], to)) return 1;
    return 0;
}

/* Number of forbidden includes in one file (each printed). */
static int check_file(const Layer *l, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s: cannot open", path);
    char line[1024];
    int bad = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char target[64];
        if (sscanf(line, " # include \"%63[^/\"]/", target) != 1 &&
            sscanf(line, " #include \"%63[^/\"]/", target) != 1)
            continue;
        if (!find_layer(target)) continue;   /* not a layer folder */
        if (!allowed(l, target)) {
            print_error("%s:%d: %s/ may not include %s/ (README, Architecture)\n", path, lineno,
                        l->name, target);
            bad++;
        }
    }
    fclose(f);
    return bad;
}

static int check_layer(const Layer *l)
{
    char dir[1024], path[1400];
    snprintf(dir, sizeof dir, "%s/%s", test_src(), l->name);
    DIR *d = opendir(dir);
    if (!d) fail_msg("%s: cannot open the layer folder", dir);
    int bad = 0, files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 3 || (strcmp(e->d_name + n - 2, ".c") && strcmp(e->d_name + n - 2, ".h")))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        bad += check_file(l, path);
        files++;
    }
    closedir(d);
    if (!files) fail_msg("%s: no source files", dir);
    return bad;
}

static void test_every_include_follows_the_readme_layering(void **state)
{
    read_rules();
    int bad = 0;
    for (int i = 0; i < n_layers; i++) bad += check_layer(&layers[i]);
    if (bad) fail_msg("%d include(s) break the layering", bad);
}

/* The rules themselves have no cycle: a layer never reaches itself through what it may include. */
static int reaches(const Layer *from, const char *target, int depth)
{
    if (depth > MAX_LAYERS) return 1;
    for (int i = 0; i < from->n_allowed; i++) {
        if (!strcmp(from->allowed[i], target)) return 1;
        const Layer *next = find_layer(from->allowed[i]);
        if (next && reaches(next, target, depth + 1)) return 1;
    }
    return 0;
}

static void test_the_rules_have_no_cycle(void **state)
{
    read_rules();
    for (int i = 0; i < n_layers; i++)
        if (reaches(&layers[i], layers[i].name, 0))
            fail_msg("README include rules: %s reaches itself", layers[i].name);
    const Layer *base = find_layer("base");
    assert_non_null(base);
    assert_int_equal(base->n_allowed, 0);
}

/* The checker itself catches a forbidden include (so the test above can fail). */
static void test_checker_flags_an_upward_include(void **state)
{
    read_rules();
    char dir[512], path[700];
    test_tmpdir(dir, sizeof dir, "layers");
    snprintf(path, sizeof path, "%s/bad.c", dir);
    test_write_text(path, "#include \"base/check.h\"\n#include \"train/config.h\"\n");
    assert_int_equal(check_file(find_layer("model"), path), 1);
    assert_int_equal(check_file(find_layer("train"), path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_include_follows_the_readme_layering),
        cmocka_unit_test(test_the_rules_have_no_cycle),
        cmocka_unit_test(test_checker_flags_an_upward_include),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
