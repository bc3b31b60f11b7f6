/* Eight threads hammer one cache: adds, typed lookups, JSON searches, whole and
 * partition exports and imports, stats, with access callbacks that count from every
 * thread while the main thread keeps replacing the callbacks. Every lookup of a token
 * the thread added must succeed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#define THREADS 8
#define TENANTS_PER_THREAD 50

static const tc_cache *cache;
static atomic_long notifications;
static atomic_long lookup_failures;
static atomic_long call_failures;
static long rounds;

static void count_access(void *user_data, const tc_access_event *event) {
    (void)user_data;
    (void)event;
    atomic_fetch_add(&notifications, 1);
}

static void expect_ok(tc_result r) {
    if (r != TC_RESULT_OK) {
        atomic_fetch_add(&call_failures, 1);
    }
}

static void *hammer(void *arg) {
    int id = (int)(size_t)arg;
    const char *const scopes[] = {TEST_GRAPH};
    char tenant[32], secret[64], query[256], buf[128];
    for (long i = 0; i < rounds; i++) {
        snprintf(tenant, sizeof tenant, "t%d-%ld", id, i % TENANTS_PER_THREAD);
        snprintf(secret, sizeof secret, "secret-%d-%ld", id, i % TENANTS_PER_THREAD);
        char *event = test_app_event(tenant, TEST_GRAPH, secret);
        expect_ok(tc_cache_add_event(cache, event, TEST_NOW));
        free(event);

        size_t len = 0;
        int64_t expires_on = 0;
        tc_result r = tc_cache_get_access_token(cache, NULL, TEST_ENV, TEST_CLIENT_ID, tenant, scopes, 1, NULL, buf,
                                                sizeof buf, &len, &expires_on);
        if (r != TC_RESULT_OK || strcmp(buf, secret) != 0 || expires_on != TEST_NOW + 3600) {
            atomic_fetch_add(&lookup_failures, 1);
        }

        snprintf(query, sizeof query,
                 "{\"client_id\": \"" TEST_CLIENT_ID "\", \"realm\": \"%s\", \"home_account_id\": null}", tenant);
        tc_bytes found = {NULL, 0};
        expect_ok(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, scopes, 1, query, TEST_NOW, &found));
        if (!found.data || !strstr((const char *)found.data, secret)) {
            atomic_fetch_add(&lookup_failures, 1);
        }
        tc_bytes_free(&found);

        if (i % 25 == 0) {
            tc_bytes doc = {NULL, 0};
            expect_ok(tc_cache_serialize_compact(cache, &doc));
            tc_bytes_free(&doc);
            tc_cache_stats stats;
            expect_ok(tc_cache_get_stats(cache, &stats));
            tc_bytes keys = {NULL, 0};
            expect_ok(tc_cache_partition_keys(cache, &keys));
            tc_bytes_free(&keys);
        }
        if (i % 10 == 5) {
            /* Export this tenant's partition and import it back (as a store round trip). */
            char key[96];
            snprintf(key, sizeof key, TEST_CLIENT_ID "_%s_AppTokenCache", tenant);
            tc_bytes blob = {NULL, 0};
            expect_ok(tc_cache_serialize_partition(cache, key, &blob));
            expect_ok(tc_cache_deserialize_partition(cache, key, blob.data, blob.len));
            tc_bytes_free(&blob);
        }
    }
    return NULL;
}

int main(void) {
    rounds = test_env_long("TC_TEST_ROUNDS", 400);
    cache = test_new_cache();
    CHECK_RESULT(tc_cache_set_access_callbacks(cache, count_access, count_access, NULL), TC_RESULT_OK);
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_create(&threads[t], NULL, hammer, (void *)(size_t)t) == 0);
    }
    /* Meanwhile, replace the callbacks over and over: calls in flight keep the ones
     * they started with. */
    for (int i = 0; i < 200; i++) {
        CHECK_RESULT(tc_cache_set_access_callbacks(cache, i % 2 ? count_access : NULL, count_access, NULL),
                     TC_RESULT_OK);
    }
    for (int t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
    }
    long tenants = rounds < TENANTS_PER_THREAD ? rounds : TENANTS_PER_THREAD;
    CHECK(atomic_load(&call_failures) == 0);
    CHECK(atomic_load(&lookup_failures) == 0);
    CHECK(test_cache_len(cache) == (size_t)(THREADS * tenants + 1)); /* + the shared app metadata */
    CHECK(atomic_load(&notifications) >= THREADS * rounds * 2); /* at least the after callbacks */
    tc_cache_stats stats;
    CHECK_RESULT(tc_cache_get_stats(cache, &stats), TC_RESULT_OK);
    CHECK(stats.hits[TC_CREDENTIAL_TYPE_ACCESS_TOKEN] == (uint64_t)(THREADS * rounds));
    printf("threads: %d threads x %ld rounds, %ld notifications\n", THREADS, rounds, atomic_load(&notifications));
    tc_cache_free(cache);
    return test_finish("threads");
}
