/* The C side of the ABI benchmark (`make bench-c`): W1 lookups through libtokencache.
 *
 * W1: TC_BENCH_TENANTS tenants (default 100 000) x 2 resources, one client-credentials
 * access token of 1 500 characters each, for one confidential client; the same seeded
 * data as ffi/benches/rust_lookup.rs. The cache is built with tc_cache_add_event, saved,
 * and loaded into the cache that is measured (as an application loads its file).
 *
 * Measures the median of single-call times and the median over batches of 1 000 calls
 * of the mean time per call, of:
 *  - tc_cache_get_access_token: the typed hot path (strings in; secret copied out);
 *  - tc_cache_search: msal's silent-flow query as JSON in, a JSON array out, freed.
 * Prints `RESULT <name> <median ns> <mean ns>` lines; it measures and reports, it
 * asserts no time. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tokencache.h>

#define ENV "login.microsoftonline.com"
#define NOW 1700000000LL
#define TOKEN_CHARS 1500
#define BATCH 1000
#define BATCHES 200
#define SAMPLES 200000
#define ORDER 65536

static const char *const resources[2] = {"https://graph.microsoft.com/.default", "https://storage.azure.com/.default"};

/* splitmix64: the generator the Rust benchmark uses too. */
static uint64_t next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void guid(uint64_t *state, char out[37]) {
    uint64_t a = next(state), b = next(state);
    snprintf(out, 37, "%08llx-%04llx-4%03llx-%04llx-%012llx", (unsigned long long)(a >> 32),
             (unsigned long long)((a >> 16) & 0xffff), (unsigned long long)(a & 0xfff),
             (unsigned long long)(0x8000 | ((b >> 48) & 0x3fff)), (unsigned long long)(b & 0xffffffffffffULL));
}

static void token(uint64_t *state, char out[TOKEN_CHARS + 1]) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < TOKEN_CHARS; i++) {
        out[i] = alphabet[next(state) & 63];
    }
    out[TOKEN_CHARS] = 0;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fail(tc_result r, const char *what) {
    tc_bytes message = {NULL, 0};
    tc_last_error_message(&message);
    fprintf(stderr, "%s failed: %u %s\n", what, (unsigned)r, message.data ? (const char *)message.data : "");
    exit(1);
}

typedef struct {
    const tc_cache *cache;
    const char *client_id;
    char (*tenants)[37];
    char (*queries)[256];
    uint32_t (*order)[2];
    char secret[4096];
} bench;

static void typed_lookup(bench *b, size_t i) {
    uint32_t *pick = b->order[i % ORDER];
    const char *const scopes[] = {resources[pick[1]]};
    size_t len = 0;
    int64_t expires_on = 0;
    tc_result r = tc_cache_get_access_token(b->cache, NULL, ENV, b->client_id, b->tenants[pick[0]], scopes, 1, NULL,
                                            b->secret, sizeof b->secret, &len, &expires_on);
    if (r != TC_RESULT_OK || len != TOKEN_CHARS) {
        fail(r, "tc_cache_get_access_token");
    }
}

static void json_search(bench *b, size_t i) {
    uint32_t *pick = b->order[i % ORDER];
    const char *const scopes[] = {resources[pick[1]]};
    tc_bytes found = {NULL, 0};
    tc_result r = tc_cache_search(b->cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, scopes, 1, b->queries[pick[0]], NOW + 10,
                                  &found);
    if (r != TC_RESULT_OK || found.len < TOKEN_CHARS) {
        fail(r, "tc_cache_search");
    }
    tc_bytes_free(&found);
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t ticks(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Median of single-call times (minus the clock's own cost) and median over batches of
 * the mean time per call, in ns. */
static void measure(bench *b, void (*call)(bench *, size_t), const char *name) {
    for (size_t i = 0; i < BATCH * 20; i++) {
        call(b, i);
    }
    uint64_t *samples = malloc(SAMPLES * sizeof *samples);
    for (size_t i = 0; i < SAMPLES; i++) {
        uint64_t start = ticks();
        samples[i] = ticks() - start;
    }
    qsort(samples, SAMPLES, sizeof *samples, compare_u64);
    double overhead = (double)samples[SAMPLES / 2];
    for (size_t i = 0; i < SAMPLES; i++) {
        uint64_t start = ticks();
        call(b, i);
        samples[i] = ticks() - start;
    }
    qsort(samples, SAMPLES, sizeof *samples, compare_u64);
    double median = (double)samples[SAMPLES / 2] - overhead;
    free(samples);
    double per_call[BATCHES];
    for (size_t batch = 0; batch < BATCHES; batch++) {
        double start = now_ns();
        for (size_t i = 0; i < BATCH; i++) {
            call(b, batch * BATCH + i);
        }
        per_call[batch] = (now_ns() - start) / BATCH;
    }
    qsort(per_call, BATCHES, sizeof per_call[0], compare_doubles);
    printf("RESULT %s %.0f %.0f\n", name, median > 0 ? median : 0, per_call[BATCHES / 2]);
}

int main(void) {
    const char *env = getenv("TC_BENCH_TENANTS");
    size_t tenants = env && *env ? (size_t)strtoull(env, NULL, 10) : 100000;
    uint64_t rng = 0x57317e4a2c0ffee1ULL;
    char client_id[37];
    guid(&rng, client_id);
    bench b = {.client_id = client_id};
    b.tenants = malloc(tenants * sizeof *b.tenants);
    b.queries = malloc(tenants * sizeof *b.queries);
    b.order = malloc(ORDER * sizeof *b.order);
    char *event = malloc(TOKEN_CHARS + 1024);
    char tok[TOKEN_CHARS + 1];
    for (size_t t = 0; t < tenants; t++) {
        guid(&rng, b.tenants[t]);
        snprintf(b.queries[t], sizeof b.queries[t],
                 "{\"client_id\": \"%s\", \"environment\": \"" ENV "\", \"realm\": \"%s\", \"home_account_id\": null}",
                 client_id, b.tenants[t]);
    }

    const tc_cache *builder = NULL;
    tc_result r = tc_cache_new(&builder);
    if (r != TC_RESULT_OK) {
        fail(r, "tc_cache_new");
    }
    /* Tokens are drawn after the ids, tenant by tenant, as in the Rust benchmark. */
    double start = now_ns();
    for (size_t t = 0; t < tenants; t++) {
        for (int res = 0; res < 2; res++) {
            token(&rng, tok);
            snprintf(event, TOKEN_CHARS + 1024,
                     "{\"client_id\": \"%s\", \"scope\": [\"%s\"], \"token_endpoint\": \"https://" ENV
                     "/%s/oauth2/v2.0/token\", \"grant_type\": \"client_credentials\", \"response\": "
                     "{\"access_token\": \"%s\", \"expires_in\": 3600, \"token_type\": \"Bearer\"}, \"params\": null, "
                     "\"data\": {\"claims\": null, \"scope\": [\"%s\"]}, \"environment\": \"" ENV "\"}",
                     client_id, resources[res], b.tenants[t], tok, resources[res]);
            if ((r = tc_cache_add_event(builder, event, NOW)) != TC_RESULT_OK) {
                fail(r, "tc_cache_add_event");
            }
        }
    }
    double add_ns = (now_ns() - start) / (double)(2 * tenants);
    tc_bytes saved = {NULL, 0};
    if ((r = tc_cache_serialize(builder, &saved)) != TC_RESULT_OK) {
        fail(r, "tc_cache_serialize");
    }
    tc_cache_free(builder);
    if ((r = tc_cache_new(&b.cache)) != TC_RESULT_OK) {
        fail(r, "tc_cache_new");
    }
    start = now_ns();
    if ((r = tc_cache_deserialize(b.cache, saved.data, saved.len)) != TC_RESULT_OK) {
        fail(r, "tc_cache_deserialize");
    }
    double load_ms = (now_ns() - start) / 1e6;
    size_t saved_len = saved.len;
    tc_bytes_free(&saved);
    size_t entries = 0;
    tc_cache_len(b.cache, &entries);
    fprintf(stderr, "W1: %zu tenants, %zu entries, %.1f MB document loaded in %.0f ms\n", tenants, entries,
            saved_len / 1e6, load_ms);

    uint64_t order_rng = 0x0b5e55edcafef00dULL;
    for (size_t i = 0; i < ORDER; i++) {
        b.order[i][0] = (uint32_t)(next(&order_rng) % tenants);
        b.order[i][1] = (uint32_t)(next(&order_rng) & 1);
    }
    printf("RESULT c_add_event %.0f %.0f\n", add_ns, add_ns);
    measure(&b, typed_lookup, "c_get_access_token");
    measure(&b, json_search, "c_search_json");

    tc_cache_free(b.cache);
    free(event);
    free(b.order);
    free(b.queries);
    free(b.tenants);
    return 0;
}
