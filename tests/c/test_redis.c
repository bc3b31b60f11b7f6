/* Redis and a tiered store over it, against the real redis-server that
 * scripts/redis-server.sh starts (TOKENCACHE_REDIS_URL). The server is stopped in the
 * middle (TOKENCACHE_REDIS_CTL): partitions in L1 keep loading, failures are counted and
 * open the circuit, a plain Redis provider gets TC_RESULT_STORE_UNAVAILABLE; after a
 * restart writes reach Redis again. Without the variables the test is skipped, loudly. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, strdup, strtok_r */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

#define SKIPPED 77 /* CTest's SKIP_RETURN_CODE */

static char prefix[64];

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static bool redis_ctl(const char *verb) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "\"%s\" %s \"%s\" >/dev/null", getenv("TOKENCACHE_REDIS_CTL"), verb,
             getenv("TOKENCACHE_REDIS_DIR"));
    return system(cmd) == 0;
}

/* Options with timeouts of `ms` each. Long ones let a TLS handshake finish under
 * valgrind on a loaded machine; the outage test keeps them short, since while Redis is
 * down the pool keeps retrying a connection for the whole connect timeout. */
static tc_redis_options *options_with_timeouts(uint64_t ms) {
    tc_redis_options *options = NULL;
    CHECK_RESULT(tc_redis_options_new(&options), TC_RESULT_OK);
    CHECK_RESULT(tc_redis_options_set_timeouts(options, ms, ms, ms), TC_RESULT_OK);
    return options;
}

static tc_redis_options *patient_options(void) { return options_with_timeouts(10000); }

static const tc_store *redis_store(const char *url, uint64_t timeout_ms) {
    tc_redis_options *options = options_with_timeouts(timeout_ms);
    CHECK_RESULT(tc_redis_options_set_key_prefix(options, prefix), TC_RESULT_OK);
    CHECK_RESULT(tc_redis_options_set_max_connections(options, 4), TC_RESULT_OK);
    const tc_store *store = NULL;
    CHECK_RESULT(tc_store_redis_open(url, options, &store), TC_RESULT_OK);
    tc_redis_options_free(options);
    return store;
}

static const tc_provider *provider_over(const tc_store *store) {
    const tc_provider *provider = NULL;
    CHECK_RESULT(tc_provider_new(store, NULL, &provider), TC_RESULT_OK);
    return provider;
}

/* Loads `key` and adds the app token `secret` for tenant `key` (so each partition is
 * distinct), then saves; returns the save's result. */
static tc_result save_app_token(const tc_provider *provider, const char *key, const char *secret) {
    const tc_cache *cache = NULL;
    tc_result r = tc_provider_load(provider, key, &cache);
    if (r != TC_RESULT_OK) return r;
    char *event = test_app_event(key, TEST_GRAPH, secret);
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    r = tc_provider_save(provider, cache);
    if (r != TC_RESULT_OK) tc_cache_free(cache); /* a failed save leaves it ours */
    return r;
}

/* Whether partition `key` loads holding `secret` (false also when the load fails). */
static bool holds(const tc_provider *provider, const char *key, const char *secret) {
    const tc_cache *cache = NULL;
    if (tc_provider_load(provider, key, &cache) != TC_RESULT_OK) return false;
    tc_bytes found = {NULL, 0};
    bool holds = tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, NULL, 0, NULL, TEST_NOW, &found) ==
                     TC_RESULT_OK &&
                 test_bytes_contain(&found, secret);
    tc_bytes_free(&found);
    tc_cache_free(cache);
    return holds;
}

static tc_store_stats store_stats(const tc_store *store) {
    tc_store_stats stats;
    memset(&stats, 0, sizeof stats);
    CHECK_RESULT(tc_store_get_stats(store, &stats), TC_RESULT_OK);
    return stats;
}

static void redis_round_trip(const char *url) {
    const tc_store *store = redis_store(url, 10000);
    const tc_provider *writer = provider_over(store);
    const tc_provider *reader = provider_over(store);
    tc_store_free(store);
    CHECK_RESULT(save_app_token(writer, "tenant-a", "at-a"), TC_RESULT_OK);
    CHECK(holds(reader, "tenant-a", "at-a"));
    CHECK(!holds(reader, "tenant-b", "at-a"));
    tc_provider_stats s;
    CHECK_RESULT(tc_provider_get_stats(reader, &s), TC_RESULT_OK);
    CHECK(s.hits == 1 && s.misses == 1);

    /* Opening connects lazily: a server that isn't there fails the first operation. */
    const tc_store *nowhere = NULL;
    CHECK_RESULT(tc_store_redis_open("redis://user:hunter2@127.0.0.1:1", NULL, &nowhere), TC_RESULT_OK);
    const tc_provider *lost = provider_over(nowhere);
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_provider_load(lost, "tenant-a", &cache), TC_RESULT_STORE_UNAVAILABLE);
    CHECK(cache == NULL && test_last_error_contains("127.0.0.1:1"));
    tc_bytes message = {NULL, 0};
    CHECK_RESULT(tc_last_error_message(&message), TC_RESULT_OK);
    CHECK(!test_bytes_contain(&message, "hunter2")); /* the password never shows */
    tc_bytes_free(&message);
    tc_provider_free(lost);
    tc_store_free(nowhere);
    CHECK_RESULT(tc_store_redis_open("not a url", NULL, &nowhere), TC_RESULT_INVALID_ARGUMENT);
    tc_provider_free(writer);
    tc_provider_free(reader);
}

static void tiered_survives_a_redis_outage(const char *url) {
    const tc_store *redis = redis_store(url, 1000);
    tc_tiered_options *options = NULL;
    CHECK_RESULT(tc_tiered_options_new(&options), TC_RESULT_OK);
    CHECK_RESULT(tc_tiered_options_set_on_l2_failure(options, TC_L2_FAILURE_POLICY_SERVE_FROM_L1), TC_RESULT_OK);
    CHECK_RESULT(tc_tiered_options_set_circuit_breaker(options, 2, 200), TC_RESULT_OK);
    const tc_store *tiered = NULL;
    CHECK_RESULT(tc_store_tiered_new(redis, options, &tiered), TC_RESULT_OK);
    tc_tiered_options_free(options);
    const tc_provider *provider = provider_over(tiered);
    const tc_provider *direct = provider_over(redis); /* Redis alone, no L1 */

    CHECK_RESULT(save_app_token(provider, "tenant-1", "at-1"), TC_RESULT_OK);
    CHECK_RESULT(save_app_token(provider, "tenant-2", "at-2"), TC_RESULT_OK);
    CHECK(holds(direct, "tenant-1", "at-1")); /* written to L2 */
    tc_store_stats before = store_stats(tiered);
    CHECK(before.layers == (TC_STORE_LAYER_TIERED | TC_STORE_LAYER_REDIS));
    CHECK(before.l2_errors == 0 && before.circuit == TC_CIRCUIT_STATE_CLOSED && before.l1_entries == 2);

    if (!CHECK(redis_ctl("stop"))) return;
    /* Partitions in L1 keep loading; a partition only L2 could have is a miss. */
    for (int i = 0; i < 5; i++) {
        CHECK(holds(provider, "tenant-1", "at-1"));
        CHECK(holds(provider, "tenant-2", "at-2"));
        CHECK(!holds(provider, "tenant-3", "at-3"));
    }
    CHECK_RESULT(save_app_token(provider, "tenant-4", "at-4"), TC_RESULT_OK); /* L1 only */
    CHECK(holds(provider, "tenant-4", "at-4"));
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_provider_load(direct, "tenant-1", &cache), TC_RESULT_STORE_UNAVAILABLE);
    tc_store_stats during = store_stats(tiered);
    CHECK(during.l2_errors >= 2);
    CHECK(during.circuit_opened >= 1);
    CHECK(during.l2_skipped >= 1);
    CHECK(during.l1_hits >= before.l1_hits + 10);
    CHECK(during.l2_latency_p99_ns > 0);

    if (!CHECK(redis_ctl("restart"))) return;
    /* The restarted server is empty. After the cool-down a probe closes the circuit
     * and writes reach Redis again. */
    bool reached = false;
    for (int attempt = 0; attempt < 100 && !reached; attempt++) {
        sleep_ms(50);
        save_app_token(provider, "tenant-5", "at-5");
        reached = holds(direct, "tenant-5", "at-5");
    }
    CHECK(reached);
    /* The save made during the outage was written back. */
    CHECK(holds(direct, "tenant-4", "at-4"));
    /* The restarted server lost tenant-1 and the epoch marker with it: the L1 copy is
     * written back at its next check (within a second), not dropped. */
    bool restored = false;
    for (int attempt = 0; attempt < 60 && !restored; attempt++) {
        sleep_ms(50);
        CHECK(holds(provider, "tenant-1", "at-1"));
        restored = holds(direct, "tenant-1", "at-1");
    }
    CHECK(restored);
    tc_store_stats after = store_stats(tiered);
    CHECK(after.circuit == TC_CIRCUIT_STATE_CLOSED);
    CHECK(after.l2_write_backs >= 1 && after.l2_write_backs_waiting == 0 && after.l2_write_backs_lost == 0);
    CHECK(after.l1_copies_restored >= 1);

    tc_provider_free(provider);
    tc_provider_free(direct);
    tc_store_free(tiered);
    tc_store_free(redis);
}

/* A Redis Cluster (TOKENCACHE_REDIS_CLUSTER_URLS, comma-separated seeds) and a TLS
 * server with a private CA (TOKENCACHE_REDIS_TLS_URL, TOKENCACHE_REDIS_TLS_CA). */
/* A save that fails because Redis is down leaves the cache, with its token, to the
 * caller, who saves it again once Redis is back. */
static void a_failed_save_keeps_the_cache_for_another_try(const char *url) {
    const tc_store *store = redis_store(url, 1000);
    const tc_provider *provider = provider_over(store);
    tc_store_free(store);
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_provider_load(provider, "tenant-retry", &cache), TC_RESULT_OK);
    char *event = test_app_event("tenant-retry", TEST_GRAPH, "at-retry");
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    tc_result r = TC_RESULT_STORE_UNAVAILABLE;
    if (CHECK(redis_ctl("stop"))) {
        CHECK_RESULT(tc_provider_save(provider, cache), TC_RESULT_STORE_UNAVAILABLE);
        CHECK(test_cache_len(cache) > 0); /* still ours, token and all */
        if (CHECK(redis_ctl("restart"))) {
            for (int attempt = 0; attempt < 100 && r != TC_RESULT_OK; attempt++) {
                sleep_ms(50);
                r = tc_provider_save(provider, cache);
            }
            CHECK_RESULT(r, TC_RESULT_OK);
            CHECK(holds(provider, "tenant-retry", "at-retry"));
        }
    }
    if (r != TC_RESULT_OK) tc_cache_free(cache);
    tc_provider_free(provider);
}

static void cluster_and_tls(void) {
    const char *cluster = getenv("TOKENCACHE_REDIS_CLUSTER_URLS");
    if (cluster && *cluster) {
        char *copy = strdup(cluster);
        const char *nodes[8];
        size_t n = 0;
        for (char *save = NULL, *url = strtok_r(copy, ",", &save); url && n < 8; url = strtok_r(NULL, ",", &save)) {
            nodes[n++] = url;
        }
        const tc_store *store = NULL;
        tc_redis_options *options = patient_options();
        CHECK_RESULT(tc_store_redis_cluster_open(nodes, n, options, &store), TC_RESULT_OK);
        tc_redis_options_free(options);
        const tc_provider *provider = provider_over(store);
        for (int i = 0; i < 6; i++) { /* partitions spread over the slots */
            char key[32], secret[32];
            snprintf(key, sizeof key, "cluster-%d", i);
            snprintf(secret, sizeof secret, "at-cluster-%d", i);
            CHECK_RESULT(save_app_token(provider, key, secret), TC_RESULT_OK);
            CHECK(holds(provider, key, secret));
        }
        CHECK_RESULT(tc_store_redis_cluster_open(NULL, 0, NULL, &store), TC_RESULT_INVALID_ARGUMENT);
        tc_provider_free(provider);
        tc_store_free(store);
        free(copy);
    } else {
        fprintf(stderr, "!!! test_redis: cluster part SKIPPED (TOKENCACHE_REDIS_CLUSTER_URLS unset)\n");
    }

    const char *tls = getenv("TOKENCACHE_REDIS_TLS_URL");
    const char *ca_path = getenv("TOKENCACHE_REDIS_TLS_CA");
    if (tls && *tls && ca_path && *ca_path) {
        size_t ca_len = 0;
        char *ca = test_read_file(ca_path, &ca_len);
        CHECK(ca != NULL);
        tc_redis_options *options = patient_options();
        CHECK_RESULT(tc_redis_options_set_tls_root_certificates(options, (const uint8_t *)ca, ca_len), TC_RESULT_OK);
        free(ca);
        const tc_store *store = NULL;
        CHECK_RESULT(tc_store_redis_open(tls, options, &store), TC_RESULT_OK);
        tc_redis_options_free(options);
        const tc_provider *provider = provider_over(store);
        CHECK_RESULT(save_app_token(provider, "tls-tenant", "at-tls"), TC_RESULT_OK);
        CHECK(holds(provider, "tls-tenant", "at-tls"));
        tc_provider_free(provider);
        tc_store_free(store);

        /* Without the private CA the server's certificate is not trusted. */
        const tc_store *untrusted = NULL;
        CHECK_RESULT(tc_store_redis_open(tls, NULL, &untrusted), TC_RESULT_OK);
        const tc_provider *p = provider_over(untrusted);
        const tc_cache *cache = NULL;
        CHECK_RESULT(tc_provider_load(p, "tls-tenant", &cache), TC_RESULT_STORE_UNAVAILABLE);
        tc_provider_free(p);
        tc_store_free(untrusted);
    } else {
        fprintf(stderr, "!!! test_redis: TLS part SKIPPED (TOKENCACHE_REDIS_TLS_URL unset)\n");
    }
}

int main(void) {
    const char *url = getenv("TOKENCACHE_REDIS_URL");
    if (!url || !*url || !getenv("TOKENCACHE_REDIS_CTL") || !getenv("TOKENCACHE_REDIS_DIR")) {
        fprintf(stderr, "!!! test_redis SKIPPED: TOKENCACHE_REDIS_URL / TOKENCACHE_REDIS_CTL are not set; "
                        "run it under scripts/redis-server.sh run ... (make test-c does)\n");
        return SKIPPED;
    }
    snprintf(prefix, sizeof prefix, "tc-c-test-%ld:", (long)getpid());
    redis_round_trip(url);
    cluster_and_tls();
    tiered_survives_a_redis_outage(url);
    a_failed_save_keeps_the_cache_for_another_try(url);
    return test_finish("redis");
}
