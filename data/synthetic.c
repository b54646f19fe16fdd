/* synthetic.c: the built-in corpus (see synthetic.h for its structure). */
#include "data/synthetic.h"

#include <stdio.h>
#include <string.h>

#include "base/rng.h"

enum { N_NOUN = 12, N_VERB = 6, N_ADJ = 6, WORD_MAX = 12, DOC_MAX = 1 << 14 };

typedef struct {
    char noun[SYNTH_TOPICS][N_NOUN][WORD_MAX];
    char verb[SYNTH_TOPICS][N_VERB][WORD_MAX];
    char adj[SYNTH_TOPICS][N_ADJ][WORD_MAX];
} Lexicon;

typedef struct {
    char *p;
    int n, cap;
} Text;

static void text_put(Text *t, const char *s)
{
    size_t len = strlen(s);
    if (t->n + (int)len + 1 >= t->cap) return;   /* documents are bounded well below DOC_MAX */
    memcpy(t->p + t->n, s, len);
    t->n += (int)len;
    t->p[t->n] = '\0';
}

/* A pronounceable made-up word of 2..3 syllables (consonant-vowel, optional final consonant). */
static void make_word(char *out, Rng *r)
{
    static const char cons[] = "bdfgklmnprstvz", vow[] = "aeiou";
    int syl = 2 + (int)rng_below(r, 2), n = 0;
    for (int s = 0; s < syl; s++) {
        out[n++] = cons[rng_below(r, sizeof cons - 1)];
        out[n++] = vow[rng_below(r, sizeof vow - 1)];
    }
    if (rng_below(r, 3) == 0) out[n++] = cons[rng_below(r, sizeof cons - 1)];
    out[n] = '\0';
}

static void make_lexicon(Lexicon *lx, Rng *r)
{
    for (int t = 0; t < SYNTH_TOPICS; t++) {
        for (int i = 0; i < N_NOUN; i++) make_word(lx->noun[t][i], r);
        for (int i = 0; i < N_VERB; i++) make_word(lx->verb[t][i], r);
        for (int i = 0; i < N_ADJ; i++) make_word(lx->adj[t][i], r);
    }
}

/* Zipf-like choice: index floor(n * u^2) favours the first words of a list. */
static int zipf(Rng *r, int n)
{
    uint64_t u = rng_below(r, 1024);
    return (int)((uint64_t)n * u * u / (1024 * 1024));
}

/* NP -> the [ADJ] N[s] | a N of NP ; returns 1 if the head noun is plural. */
static int gen_np(Text *t, Rng *r, const Lexicon *lx, int topic, const char *name, int depth)
{
    if (name && rng_below(r, 10) < 3) {   /* the document's name, singular */
        text_put(t, name);
        return 0;
    }
    int plural = rng_below(r, 10) < 3;
    if (depth < 2 && rng_below(r, 5) == 0) {
        text_put(t, "a ");
        text_put(t, lx->noun[topic][zipf(r, N_NOUN)]);
        text_put(t, " of ");
        gen_np(t, r, lx, topic, name, depth + 1);
        return 0;
    }
    text_put(t, "the ");
    if (rng_below(r, 2)) {
        text_put(t, lx->adj[topic][zipf(r, N_ADJ)]);
        text_put(t, " ");
    }
    text_put(t, lx->noun[topic][zipf(r, N_NOUN)]);
    if (plural) text_put(t, "s");
    return plural;
}

/* S -> NP VP "." ; VP -> V NP | V and V NP | is/are ADJ, with number agreement. */
static void gen_sentence(Text *t, Rng *r, const Lexicon *lx, int topic, const char *name)
{
    int plural = gen_np(t, r, lx, topic, name, 0);
    text_put(t, " ");
    uint64_t form = rng_below(r, 6);
    if (form == 0) {
        text_put(t, plural ? "are " : "is ");
        text_put(t, lx->adj[topic][zipf(r, N_ADJ)]);
    } else {
        text_put(t, lx->verb[topic][zipf(r, N_VERB)]);
        if (!plural) text_put(t, "s");
        if (form == 1) {
            text_put(t, " and ");
            text_put(t, lx->verb[topic][zipf(r, N_VERB)]);
            if (!plural) text_put(t, "s");
        }
        text_put(t, " ");
        gen_np(t, r, lx, topic, name, 0);
    }
    text_put(t, ".");
}

static void gen_doc(Text *t, Rng *r, const Lexicon *lx)
{
    int topic = (int)rng_below(r, SYNTH_TOPICS);
    char name[WORD_MAX + 2];
    snprintf(name, sizeof name, "%s", lx->noun[topic][rng_below(r, N_NOUN)]);
    name[0] = (char)(name[0] - 'a' + 'A');
    t->n = 0;
    t->p[0] = '\0';
    text_put(t, "Title: ");
    text_put(t, lx->adj[topic][zipf(r, N_ADJ)]);
    text_put(t, " ");
    text_put(t, name);
    text_put(t, "\n");
    /* Mostly short documents, one in eight much longer. */
    int n_sent = 1 + (int)rng_below(r, 6) + (rng_below(r, 8) == 0 ? (int)rng_below(r, 40) : 0);
    for (int s = 0; s < n_sent; s++) {
        gen_sentence(t, r, lx, topic, name);
        text_put(t, s % 4 == 3 ? "\n" : " ");
    }
    text_put(t, "\n-- ");
    text_put(t, name);
}

void synthetic_generate(Corpus *c, int n_docs, uint64_t seed)
{
    Lexicon lx;   /* about 2 KB */
    char buf[DOC_MAX], src[64];
    Text t = {buf, 0, DOC_MAX};
    Rng r;
    rng_seed(&r, rng_derive(seed, 0x5e17));
    make_lexicon(&lx, &r);
    snprintf(src, sizeof src, "<synthetic seed=%llu>", (unsigned long long)seed);
    int file = corpus_add_source(c, src);
    for (int d = 0; d < n_docs; d++) {
        gen_doc(&t, &r, &lx);
        corpus_add_doc(c, (const uint8_t *)t.p, t.n, file, 0);
    }
}
