/* A daemon's token cache: one partition per tenant, in an in-memory L1 over Redis
 * (encrypted at rest), loaded before each request and saved after it only if it changed.
 *
 *   cc token_service.c $(pkg-config --cflags --libs tokencache) -o token_service
 *   TOKENCACHE_KEYS=$(openssl rand -hex 32) ./token_service redis://127.0.0.1:6379
 *
 * With no URL the partitions go to an SQLite file (token_service.db) instead. The "token
 * endpoint" here is a stand-in that makes up a token; a real service would call MSAL and
 * hand the token response to tc_cache_add_event the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tokencache.h>

#define AUTHORITY_HOST "login.microsoftonline.com"
#define CLIENT_ID "my-daemon"
#define SCOPE "https://graph.microsoft.com/.default"

/* Prints what failed and why; returns false on failure. */
static bool ok(tc_result result, const char *what) {
    if (result == TC_RESULT_OK) {
        return true;
    }
    tc_bytes message = {NULL, 0};
    tc_last_error_message(&message);
    fprintf(stderr, "%s: %s (%u: %s)\n", what, (const char *)message.data, (unsigned)result,
            tc_result_describe(result));
    tc_bytes_free(&message);
    return false;
}

/* The stand-in for a client-credentials request to the tenant's token endpoint. */
static void acquire_token(const tc_cache *cache, const char *tenant, int request) {
    char event[1024];
    snprintf(event, sizeof event,
             "{\"client_id\": \"" CLIENT_ID "\", \"scope\": [\"" SCOPE "\"],"
             " \"token_endpoint\": \"https://" AUTHORITY_HOST "/%s/oauth2/v2.0/token\","
             " \"grant_type\": \"client_credentials\","
             " \"response\": {\"access_token\": \"token-for-%s-from-request-%d\", \"expires_in\": 3600,"
             " \"token_type\": \"Bearer\"}}",
             tenant, tenant, request);
    ok(tc_cache_add_event(cache, event, TC_NOW), "add the token response");
}

/* One request for `tenant`: its token from the cache, or from the endpoint. */
static void handle_request(const tc_provider *provider, const char *tenant, int request) {
    const tc_cache *cache = NULL;
    if (!ok(tc_provider_load(provider, tenant, &cache), "load the tenant's partition")) {
        return;
    }
    const char *scopes[] = {SCOPE};
    char token[512];
    size_t len = 0;
    int64_t expires_on = 0;
    tc_result found = tc_cache_get_access_token(cache, NULL, AUTHORITY_HOST, CLIENT_ID, tenant, scopes, 1, NULL,
                                                token, sizeof token, &len, &expires_on);
    if (found == TC_RESULT_NOT_FOUND) {
        acquire_token(cache, tenant, request);
        printf("request %d, %s: token from the endpoint\n", request, tenant);
    } else if (ok(found, "look the token up")) {
        printf("request %d, %s: token from the cache (%zu bytes)\n", request, tenant, len);
    }
    ok(tc_provider_save(provider, cache), "save the tenant's partition"); /* writes only if changed */
}

/* Redis (optionally encrypted with the keys in $TOKENCACHE_KEYS) under an L1, or SQLite. */
static const tc_store *open_store(const char *redis_url) {
    const tc_store *store = NULL;
    if (!redis_url) {
        ok(tc_store_sqlite_open("token_service.db", 0, 3600, &store), "open token_service.db");
        return store;
    }
    const tc_store *redis = NULL;
    tc_redis_options *redis_options = NULL;
    ok(tc_redis_options_new(&redis_options), "redis options");
    ok(tc_redis_options_set_key_prefix(redis_options, "token-service:"), "key prefix");
    bool opened = ok(tc_store_redis_open(redis_url, redis_options, &redis), "open Redis");
    tc_redis_options_free(redis_options);
    if (!opened) {
        return NULL;
    }
    const tc_store *l2 = redis;
    tc_key_ring *keys = NULL;
    if (getenv("TOKENCACHE_KEYS") && ok(tc_key_ring_from_env("TOKENCACHE_KEYS", &keys), "read the keys")) {
        ok(tc_store_encrypted_new(redis, keys, 0, &l2), "encrypt");
        tc_key_ring_free(keys);
        tc_store_free(redis); /* the encrypted store keeps it */
    }
    tc_tiered_options *options = NULL;
    ok(tc_tiered_options_new(&options), "tiered options");
    ok(tc_tiered_options_set_l1_max_bytes(options, 64u << 20), "L1 size");
    ok(tc_tiered_options_set_on_l2_failure(options, TC_L2_FAILURE_POLICY_SERVE_FROM_L1), "failure policy");
    ok(tc_store_tiered_new(l2, options, &store), "tiered store");
    tc_tiered_options_free(options);
    tc_store_free(l2); /* the tiered store keeps it */
    return store;
}

int main(int argc, char **argv) {
    const tc_store *store = open_store(argc > 1 ? argv[1] : NULL);
    const tc_provider *provider = NULL;
    if (!store || !ok(tc_provider_new(store, NULL, &provider), "create the provider")) {
        tc_store_free(store);
        return 1;
    }
    const char *tenants[] = {"contoso", "fabrikam", "contoso", "contoso", "fabrikam"};
    for (int i = 0; i < 5; i++) {
        handle_request(provider, tenants[i], i);
    }

    tc_provider_stats p;
    tc_store_stats s;
    if (ok(tc_provider_get_stats(provider, &p), "provider stats") && ok(tc_store_get_stats(store, &s), "store stats")) {
        printf("provider: %llu loads found, %llu not, %llu writes\n", (unsigned long long)p.hits,
               (unsigned long long)p.misses, (unsigned long long)p.writes);
        if (s.layers & TC_STORE_LAYER_TIERED) {
            printf("store: L1 hits %llu, L2 hits %llu, misses %llu, L2 errors %llu, L2 p99 %llu us\n",
                   (unsigned long long)s.l1_hits, (unsigned long long)s.l2_hits, (unsigned long long)s.misses,
                   (unsigned long long)s.l2_errors, (unsigned long long)(s.l2_latency_p99_ns / 1000));
        }
    }
    tc_provider_free(provider);
    tc_store_free(store);
    return 0;
}
