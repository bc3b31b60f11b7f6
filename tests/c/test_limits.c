/* Bounded caches: entry and byte limits with LRU eviction of partitions, absolute and
 * sliding expiration, purge, and the counters that report all of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static const char *const graph[] = {TEST_GRAPH};

static const tc_cache *bounded(uint64_t max_entries, uint64_t max_bytes, int64_t absolute, int64_t sliding) {
    tc_cache_options *options = NULL;
    CHECK_RESULT(tc_cache_options_new(&options), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_max_entries(options, max_entries), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_max_bytes(options, max_bytes), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_absolute_expiration(options, absolute), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_sliding_expiration(options, sliding), TC_RESULT_OK);
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_cache_new_with_options(options, &cache), TC_RESULT_OK);
    tc_cache_options_free(options);
    return cache;
}

static void add_tenant(const tc_cache *cache, int i, int64_t now) {
    char tenant[32], secret[32];
    snprintf(tenant, sizeof tenant, "tenant-%d", i);
    snprintf(secret, sizeof secret, "secret-%d", i);
    char *event = test_app_event(tenant, TEST_GRAPH, secret);
    CHECK_RESULT(tc_cache_add_event(cache, event, now), TC_RESULT_OK);
    free(event);
}

static tc_result lookup(const tc_cache *cache, int i) {
    char tenant[32], secret[64];
    snprintf(tenant, sizeof tenant, "tenant-%d", i);
    size_t len;
    int64_t expires_on;
    return tc_cache_get_access_token(cache, NULL, TEST_ENV, TEST_CLIENT_ID, tenant, graph, 1, NULL, secret,
                                     sizeof secret, &len, &expires_on);
}

static void entry_limit_evicts_least_recently_used(void) {
    /* Each tenant adds one access token; app metadata is shared. */
    const tc_cache *cache = bounded(5, 0, 0, 0);
    for (int i = 0; i < 10; i++) {
        add_tenant(cache, i, TEST_NOW + i);
    }
    CHECK(test_cache_len(cache) <= 5);
    CHECK_RESULT(lookup(cache, 9), TC_RESULT_OK);
    CHECK_RESULT(lookup(cache, 0), TC_RESULT_NOT_FOUND);
    tc_cache_stats stats;
    memset(&stats, 0, sizeof stats);
    CHECK_RESULT(tc_cache_get_stats(cache, &stats), TC_RESULT_OK);
    CHECK(stats.evicted_capacity >= 5);
    CHECK(stats.entries == test_cache_len(cache));
    CHECK(stats.partitions >= 1 && stats.partitions <= 5 && stats.bytes > 0);
    tc_cache_free(cache);
}

static void byte_limit(void) {
    const tc_cache *cache = bounded(0, 4096, 0, 0);
    for (int i = 0; i < 50; i++) {
        add_tenant(cache, i, TEST_NOW);
    }
    tc_cache_stats stats;
    CHECK_RESULT(tc_cache_get_stats(cache, &stats), TC_RESULT_OK);
    /* Bytes are core's estimate of the memory an entry takes (a few hundred bytes for
     * one of these tokens); the partition just written is always kept. So the limit
     * holds and the cache keeps a handful of entries, not fifty. */
    CHECK(stats.bytes <= 4096);
    CHECK(stats.entries >= 1 && stats.entries < 25);
    CHECK(stats.evicted_capacity >= 25);
    CHECK_RESULT(lookup(cache, 49), TC_RESULT_OK);
    tc_cache_free(cache);
}

static void absolute_and_sliding_expiration(void) {
    const tc_cache *cache = bounded(0, 0, 1000, 0);
    add_tenant(cache, 1, TEST_NOW);
    add_tenant(cache, 2, TEST_NOW + 500);
    uint64_t removed = 99;
    CHECK_RESULT(tc_cache_purge_expired(cache, TEST_NOW + 900, &removed), TC_RESULT_OK);
    CHECK(removed == 0);
    CHECK_RESULT(tc_cache_purge_expired(cache, TEST_NOW + 1001, &removed), TC_RESULT_OK);
    CHECK(removed == 1);
    CHECK_RESULT(lookup(cache, 1), TC_RESULT_NOT_FOUND);
    CHECK_RESULT(lookup(cache, 2), TC_RESULT_OK);
    tc_cache_stats stats;
    CHECK_RESULT(tc_cache_get_stats(cache, &stats), TC_RESULT_OK);
    CHECK(stats.evicted_absolute == 1);
    tc_cache_free(cache);

    cache = bounded(0, 0, 0, 100);
    add_tenant(cache, 1, TEST_NOW);
    add_tenant(cache, 2, TEST_NOW);
    /* A search at +90 touches tenant 2's partition only. */
    const char *query = "{\"client_id\": \"" TEST_CLIENT_ID "\", \"realm\": \"tenant-2\", \"home_account_id\": null}";
    tc_bytes found = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, graph, 1, query, TEST_NOW + 90, &found),
                 TC_RESULT_OK);
    CHECK(test_bytes_contain(&found, "secret-2"));
    tc_bytes_free(&found);
    CHECK_RESULT(tc_cache_purge_expired(cache, TEST_NOW + 150, &removed), TC_RESULT_OK);
    CHECK(removed == 1);
    CHECK_RESULT(lookup(cache, 1), TC_RESULT_NOT_FOUND);
    CHECK_RESULT(lookup(cache, 2), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_get_stats(cache, &stats), TC_RESULT_OK);
    CHECK(stats.evicted_sliding == 1);
    tc_cache_free(cache);
}

static void hit_and_miss_counters(void) {
    const tc_cache *cache = test_new_cache();
    add_tenant(cache, 1, TEST_NOW);
    tc_bytes found = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, graph, 1, NULL, TEST_NOW, &found),
                 TC_RESULT_OK);
    tc_bytes_free(&found);
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_REFRESH_TOKEN, NULL, 0, NULL, TEST_NOW, &found),
                 TC_RESULT_OK);
    tc_bytes_free(&found);
    /* Expired: dropped by the access-token search and counted. */
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, graph, 1, NULL, TEST_NOW + 4000, &found),
                 TC_RESULT_OK);
    tc_bytes_free(&found);
    tc_cache_stats stats;
    CHECK_RESULT(tc_cache_get_stats(cache, &stats), TC_RESULT_OK);
    CHECK(stats.hits[TC_CREDENTIAL_TYPE_ACCESS_TOKEN] == 1);
    CHECK(stats.misses[TC_CREDENTIAL_TYPE_ACCESS_TOKEN] == 1);
    CHECK(stats.misses[TC_CREDENTIAL_TYPE_REFRESH_TOKEN] == 1);
    CHECK(stats.hits[TC_CREDENTIAL_TYPE_APP_METADATA] == 0);
    CHECK(stats.evicted_expired_tokens == 1);
    CHECK(stats.partitions == 0 && stats.bytes == 0); /* unbounded: not counted */
    CHECK(stats.examined >= 1);
    tc_cache_free(cache);
}

int main(void) {
    entry_limit_evicts_least_recently_used();
    byte_limit();
    absolute_and_sliding_expiration();
    hit_and_miss_counters();
    return test_finish("limits");
}
