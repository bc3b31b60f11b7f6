/* Stores and providers without a server: memory, SQLite, encryption (a wrong key gives
 * TC_RESULT_KEY_MISMATCH), a provider saving only what changed, bad stored blobs, and a
 * cache kept in a file. Redis is in test_redis.c. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkstemp, setenv */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

static const tc_store *memory_store(void) {
    const tc_store *store = NULL;
    CHECK_RESULT(tc_store_memory_new(0, &store), TC_RESULT_OK);
    return store;
}

static const tc_provider *provider_over(const tc_store *store, const tc_provider_options *options) {
    const tc_provider *provider = NULL;
    CHECK_RESULT(tc_provider_new(store, options, &provider), TC_RESULT_OK);
    return provider;
}

static tc_provider_stats provider_stats(const tc_provider *provider) {
    tc_provider_stats stats;
    memset(&stats, 0xab, sizeof stats);
    CHECK_RESULT(tc_provider_get_stats(provider, &stats), TC_RESULT_OK);
    return stats;
}

static tc_store_stats store_stats(const tc_store *store) {
    tc_store_stats stats;
    memset(&stats, 0xab, sizeof stats);
    CHECK_RESULT(tc_store_get_stats(store, &stats), TC_RESULT_OK);
    return stats;
}

/* Loads `key`, adds the user event, saves. */
static void save_user(const tc_provider *provider, const char *key) {
    const tc_cache *cache = NULL;
    if (!CHECK_RESULT(tc_provider_load(provider, key, &cache), TC_RESULT_OK)) return;
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_save(provider, cache), TC_RESULT_OK);
}

/* Whether partition `key` loads with the user's refresh token in it. */
static bool holds_user(const tc_provider *provider, const char *key) {
    const tc_cache *cache = NULL;
    if (!CHECK_RESULT(tc_provider_load(provider, key, &cache), TC_RESULT_OK)) return false;
    tc_bytes found = {NULL, 0};
    bool holds = CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_REFRESH_TOKEN, NULL, 0, NULL, TEST_NOW, &found),
                              TC_RESULT_OK) &&
                 test_bytes_contain(&found, "user-rt");
    tc_bytes_free(&found);
    CHECK_RESULT(tc_provider_save(provider, cache), TC_RESULT_OK); /* unchanged: no write */
    return holds;
}

static void provider_saves_only_what_changed(void) {
    const tc_store *store = memory_store();
    const tc_provider *provider = provider_over(store, NULL);
    tc_store_free(store); /* the provider keeps it */

    save_user(provider, "u1.t1");
    tc_provider_stats s = provider_stats(provider);
    CHECK(s.misses == 1 && s.hits == 0 && s.writes == 1);

    for (int i = 0; i < 3; i++) CHECK(holds_user(provider, "u1.t1"));
    s = provider_stats(provider);
    CHECK(s.hits == 3 && s.writes == 1); /* reads wrote nothing */

    /* A change is written; an emptied partition is removed. */
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_provider_load(provider, "u1.t1", &cache), TC_RESULT_OK);
    tc_bytes rts = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_REFRESH_TOKEN, NULL, 0, NULL, TEST_NOW, &rts), TC_RESULT_OK);
    char *rt = test_first_object((const char *)rts.data);
    tc_bytes_free(&rts);
    CHECK(rt != NULL);
    if (rt) CHECK_RESULT(tc_cache_update_rt(cache, rt, "user-rt-2", TEST_NOW + 60), TC_RESULT_OK);
    free(rt);
    CHECK_RESULT(tc_provider_save(provider, cache), TC_RESULT_OK);
    CHECK(provider_stats(provider).writes == 2);

    CHECK_RESULT(tc_provider_load(provider, "u1.t1", &cache), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_deserialize(cache, NULL, 0), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_set_state_changed(cache, true), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_save(provider, cache), TC_RESULT_OK);
    CHECK(provider_stats(provider).removals == 1);
    CHECK(!holds_user(provider, "u1.t1"));

    /* A loaded cache freed without a save is discarded. */
    CHECK_RESULT(tc_provider_load(provider, "u2.t1", &cache), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    tc_cache_free(cache);
    CHECK(!holds_user(provider, "u2.t1"));
    tc_provider_free(provider);
}

static void provider_misuse_is_refused(void) {
    const tc_store *store = memory_store();
    const tc_provider *a = provider_over(store, NULL);
    const tc_provider *b = provider_over(store, NULL);
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_provider_load(a, "u1.t1", &cache), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_save(b, cache), TC_RESULT_INVALID_ARGUMENT); /* still ours */
    CHECK(test_last_error_contains("not loaded by this provider"));
    CHECK(!holds_user(a, "u1.t1"));
    CHECK_RESULT(tc_provider_save(a, cache), TC_RESULT_OK); /* its own provider takes it */
    CHECK(holds_user(a, "u1.t1"));
    const tc_cache *plain = test_new_cache();
    CHECK_RESULT(tc_provider_save(a, plain), TC_RESULT_INVALID_ARGUMENT);
    tc_cache_free(plain);
    CHECK_RESULT(tc_provider_save(a, NULL), TC_RESULT_NULL_PARAMETER);
    CHECK_RESULT(tc_provider_load(a, NULL, &cache), TC_RESULT_NULL_PARAMETER);
    CHECK_RESULT(tc_provider_load(NULL, "k", &cache), TC_RESULT_NULL_PARAMETER);
    CHECK_RESULT(tc_provider_new(NULL, NULL, &a), TC_RESULT_NULL_PARAMETER);
    CHECK_RESULT(tc_store_memory_new(0, NULL), TC_RESULT_NULL_PARAMETER);

    /* A provider freed while a cache it loaded lives: the cache still saves. */
    CHECK_RESULT(tc_provider_load(a, "u3.t1", &cache), TC_RESULT_OK);
    tc_provider_free(a);
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_save(b, cache), TC_RESULT_INVALID_ARGUMENT); /* still not b's */
    tc_cache_free(cache);
    tc_provider_free(b);
    tc_store_free(store);
}

/* Two writers load one partition, both add a token, both save: the second save finds
 * the partition changed and merges instead of overwriting (a versioned store). */
static void concurrent_saves_merge(void) {
    const tc_store *store = memory_store();
    const tc_provider *a = provider_over(store, NULL);
    const tc_provider *b = provider_over(store, NULL);
    const tc_cache *ca = NULL, *cb = NULL;
    CHECK_RESULT(tc_provider_load(a, "tenant-x", &ca), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_load(b, "tenant-x", &cb), TC_RESULT_OK);
    char *graph = test_app_event("tenant-x", TEST_GRAPH, "at-graph");
    char *storage = test_app_event("tenant-x", "https://storage.azure.com/.default", "at-storage");
    CHECK_RESULT(tc_cache_add_event(ca, graph, TEST_NOW), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(cb, storage, TEST_NOW), TC_RESULT_OK);
    free(graph);
    free(storage);
    CHECK_RESULT(tc_provider_save(a, ca), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_save(b, cb), TC_RESULT_OK);
    tc_provider_stats s = provider_stats(b);
    CHECK(s.conflicts == 1 && s.merges == 1 && s.merge_lost == 0 && s.writes == 1);

    const tc_cache *both = NULL;
    CHECK_RESULT(tc_provider_load(a, "tenant-x", &both), TC_RESULT_OK);
    tc_bytes found = {NULL, 0};
    CHECK_RESULT(tc_cache_search(both, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, NULL, 0, NULL, TEST_NOW, &found), TC_RESULT_OK);
    CHECK(test_bytes_contain(&found, "at-graph") && test_bytes_contain(&found, "at-storage"));
    tc_bytes_free(&found);
    tc_cache_free(both);
    tc_provider_free(a);
    tc_provider_free(b);
    tc_store_free(store);
}

/* Two instances, each with its own L1, over one versioned L2: a read served from L1
 * checks L2's version first (interval 0: every read) and drops a stale copy, so the
 * other instance's write is seen at once (Microsoft.Identity.Web #1388). */
static void stale_l1_copies_are_dropped(void) {
    const tc_store *l2 = memory_store();
    tc_tiered_options *options = NULL;
    CHECK_RESULT(tc_tiered_options_new(&options), TC_RESULT_OK);
    CHECK_RESULT(tc_tiered_options_set_l2_version_check_interval(options, 0), TC_RESULT_OK);
    const tc_store *tiered_a = NULL, *tiered_b = NULL;
    CHECK_RESULT(tc_store_tiered_new(l2, options, &tiered_a), TC_RESULT_OK);
    CHECK_RESULT(tc_store_tiered_new(l2, options, &tiered_b), TC_RESULT_OK);
    tc_tiered_options_free(options);
    tc_provider_options *provider_options = NULL;
    CHECK_RESULT(tc_provider_options_new(&provider_options), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_options_set_max_merge_retries(provider_options, 4), TC_RESULT_OK);
    const tc_provider *a = provider_over(tiered_a, provider_options);
    const tc_provider *b = provider_over(tiered_b, provider_options);
    tc_provider_options_free(provider_options);

    save_user(a, "u1.t1");
    CHECK(holds_user(b, "u1.t1")); /* B's L1 now has a copy */
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_provider_load(a, "u1.t1", &cache), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW + 100), TC_RESULT_OK); /* renewed */
    CHECK_RESULT(tc_provider_save(a, cache), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_load(b, "u1.t1", &cache), TC_RESULT_OK);
    tc_bytes found = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, NULL, 0, NULL, TEST_NOW, &found), TC_RESULT_OK);
    CHECK(test_bytes_contain(&found, "1700000100")); /* the renewed token's cached_at */
    tc_bytes_free(&found);
    tc_cache_free(cache);
    tc_store_stats s = store_stats(tiered_b);
    CHECK(s.stale_l1_drops == 1 && s.l2_version_checks == 1); /* B's first load missed L1 */

    tc_provider_free(a);
    tc_provider_free(b);
    tc_store_free(tiered_a);
    tc_store_free(tiered_b);
    tc_store_free(l2);
}

static void sqlite_keeps_partitions_across_opens(void) {
    char dir[] = "/tmp/tokencache-c-sqlite-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL)) return;
    char path[256];
    snprintf(path, sizeof path, "%s/cache.db", dir);
    for (int round = 0; round < 2; round++) {
        const tc_store *store = NULL;
        if (!CHECK_RESULT(tc_store_sqlite_open(path, 2000, 0, &store), TC_RESULT_OK)) break;
        const tc_provider *provider = provider_over(store, NULL);
        if (round == 0) {
            save_user(provider, "u1.t1");
        } else {
            CHECK(holds_user(provider, "u1.t1"));
            CHECK(provider_stats(provider).writes == 0);
        }
        tc_store_stats s = store_stats(store);
        CHECK(s.layers == TC_STORE_LAYER_SQLITE && s.circuit == TC_CIRCUIT_STATE_NONE);
        uint64_t purged = 99;
        CHECK_RESULT(tc_store_purge_expired(store, &purged), TC_RESULT_OK);
        CHECK(purged == 0);
        tc_provider_free(provider);
        tc_store_free(store);
    }
    char not_a_db[300];
    snprintf(not_a_db, sizeof not_a_db, "%s/no-such-dir/x.db", dir);
    const tc_store *store = NULL;
    tc_result r = tc_store_sqlite_open(not_a_db, 0, 0, &store);
    CHECK(r == TC_RESULT_IO || r == TC_RESULT_STORE_UNAVAILABLE);
    CHECK(store == NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static tc_key_ring *ring_of(uint8_t fill) {
    uint8_t key[32];
    memset(key, fill, sizeof key);
    tc_key_ring *ring = NULL;
    CHECK_RESULT(tc_key_ring_new(key, sizeof key, &ring), TC_RESULT_OK);
    return ring;
}

static const tc_store *encrypted_over(const tc_store *inner, const tc_key_ring *ring, uint32_t flags) {
    const tc_store *store = NULL;
    CHECK_RESULT(tc_store_encrypted_new(inner, ring, flags, &store), TC_RESULT_OK);
    return store;
}

static void encryption_with_a_wrong_key_is_a_typed_error(void) {
    const tc_store *plain = memory_store();
    tc_key_ring *ring_a = ring_of(0xa1);
    tc_key_ring *ring_b = ring_of(0xb2);
    const tc_store *enc_a = encrypted_over(plain, ring_a, 0);
    const tc_provider *pa = provider_over(enc_a, NULL);
    save_user(pa, "u1.t1");
    CHECK(holds_user(pa, "u1.t1"));

    /* Another key: a typed error, counted; nothing in the message but ids. */
    const tc_store *enc_b = encrypted_over(plain, ring_b, 0);
    const tc_provider *pb = provider_over(enc_b, NULL);
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_provider_load(pb, "u1.t1", &cache), TC_RESULT_KEY_MISMATCH);
    CHECK(cache == NULL);
    tc_store_stats s = store_stats(enc_b);
    CHECK(s.layers == (TC_STORE_LAYER_ENCRYPTED | TC_STORE_LAYER_MEMORY));
    CHECK(s.key_mismatches == 1 && s.decryption_failures == 0 && s.memory_entries == 1);

    /* The same, configured as a miss. */
    const tc_store *enc_b_miss = encrypted_over(plain, ring_b, TC_ENCRYPTION_FLAG_KEY_MISMATCH_AS_MISS);
    const tc_provider *pbm = provider_over(enc_b_miss, NULL);
    CHECK(!holds_user(pbm, "u1.t1"));
    CHECK(store_stats(enc_b_miss).key_mismatches == 1);

    /* Rotation: a ring whose primary is B that still has A reads A's blob. */
    uint8_t key_a[32];
    memset(key_a, 0xa1, sizeof key_a);
    CHECK_RESULT(tc_key_ring_add_key(ring_b, key_a, sizeof key_a), TC_RESULT_OK);
    const tc_store *enc_rotated = encrypted_over(plain, ring_b, 0);
    const tc_provider *pr = provider_over(enc_rotated, NULL);
    CHECK(holds_user(pr, "u1.t1"));

    /* Rotation while in use: tc_store_set_key_ring on a live store. */
    const tc_store *live = encrypted_over(plain, ring_a, 0);
    const tc_provider *pl = provider_over(live, NULL);
    save_user(pl, "u5.t1");                                          /* sealed with A */
    CHECK_RESULT(tc_store_set_key_ring(live, ring_b), TC_RESULT_OK); /* B primary, A kept */
    CHECK(holds_user(pl, "u5.t1"));
    save_user(pl, "u6.t1"); /* sealed with B */
    tc_key_ring *only_b = ring_of(0xb2);
    CHECK_RESULT(tc_store_set_key_ring(live, only_b), TC_RESULT_OK);
    tc_key_ring_free(only_b);
    CHECK(holds_user(pl, "u6.t1"));
    CHECK_RESULT(tc_provider_load(pl, "u5.t1", &cache), TC_RESULT_KEY_MISMATCH); /* A dropped */
    CHECK_RESULT(tc_store_set_key_ring(plain, ring_a), TC_RESULT_INVALID_ARGUMENT);
    CHECK(test_last_error_contains("no encrypted layer"));
    tc_provider_free(pl);
    tc_store_free(live);

    /* The blob read without decryption is not a cache: a miss, or an error if asked. */
    const tc_provider *raw = provider_over(plain, NULL);
    CHECK(!holds_user(raw, "u1.t1"));
    CHECK(provider_stats(raw).bad_blobs == 1);
    tc_provider_options *strict_options = NULL;
    CHECK_RESULT(tc_provider_options_new(&strict_options), TC_RESULT_OK);
    CHECK_RESULT(tc_provider_options_set_on_bad_blob(strict_options, TC_ON_BAD_BLOB_FAIL), TC_RESULT_OK);
    const tc_provider *strict = provider_over(plain, strict_options);
    tc_provider_options_free(strict_options);
    tc_result r = tc_provider_load(strict, "u1.t1", &cache);
    CHECK(r == TC_RESULT_NOT_A_CACHE || r == TC_RESULT_INVALID_JSON);

    /* Bad keys and flags. */
    uint8_t short_key[16] = {0};
    tc_key_ring *ring = NULL;
    CHECK_RESULT(tc_key_ring_new(short_key, sizeof short_key, &ring), TC_RESULT_INVALID_ARGUMENT);
    CHECK_RESULT(tc_key_ring_parse("not a key", &ring), TC_RESULT_INVALID_ARGUMENT);
    CHECK(!test_last_error_contains("not a key"));
    CHECK_RESULT(tc_key_ring_parse("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", &ring),
                 TC_RESULT_OK);
    const tc_store *bad = NULL;
    CHECK_RESULT(tc_store_encrypted_new(plain, ring, 4, &bad), TC_RESULT_INVALID_ENUM);
    const tc_store *enc_parsed = encrypted_over(plain, ring, 0);
    const tc_provider *pp = provider_over(enc_parsed, NULL);
    CHECK(holds_user(pp, "u1.t1")); /* the parsed hex key is key A */
    tc_key_ring_free(ring);
    CHECK_RESULT(tc_key_ring_from_env("TOKENCACHE_TEST_NO_SUCH_VAR", &ring), TC_RESULT_INVALID_ARGUMENT);

    /* A key file: 32 raw bytes (key A again), and a key from the environment. */
    char key_file[] = "/tmp/tokencache-c-key-XXXXXX";
    int fd = mkstemp(key_file);
    if (CHECK(fd >= 0)) {
        CHECK(write(fd, key_a, sizeof key_a) == (ssize_t)sizeof key_a);
        close(fd);
        CHECK_RESULT(tc_key_ring_from_file(key_file, &ring), TC_RESULT_OK);
        const tc_store *enc_file = encrypted_over(plain, ring, 0);
        const tc_provider *pf = provider_over(enc_file, NULL);
        CHECK(holds_user(pf, "u1.t1"));
        tc_provider_free(pf);
        tc_store_free(enc_file);
        tc_key_ring_free(ring);
        unlink(key_file);
    }
    CHECK(setenv("TOKENCACHE_TEST_KEYS", "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2, "
                                         "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", 1) == 0);
    CHECK_RESULT(tc_key_ring_from_env("TOKENCACHE_TEST_KEYS", &ring), TC_RESULT_OK);
    const tc_store *enc_env = encrypted_over(plain, ring, 0);
    const tc_provider *pe = provider_over(enc_env, NULL);
    CHECK(holds_user(pe, "u1.t1")); /* primary B, A kept for reading */
    tc_provider_free(pe);
    tc_store_free(enc_env);
    tc_key_ring_free(ring);

    const tc_provider *providers[] = {pa, pb, pbm, pr, raw, strict, pp};
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++) tc_provider_free(providers[i]);
    const tc_store *stores[] = {plain, enc_a, enc_b, enc_b_miss, enc_rotated, enc_parsed};
    for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) tc_store_free(stores[i]);
    tc_key_ring_free(ring_a);
    tc_key_ring_free(ring_b);
}

static void tiered_over_encrypted_over_sqlite_reports_every_layer(void) {
    char dir[] = "/tmp/tokencache-c-tiered-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL)) return;
    char path[256];
    snprintf(path, sizeof path, "%s/l2.db", dir);
    const tc_store *sqlite = NULL;
    CHECK_RESULT(tc_store_sqlite_open(path, 0, 0, &sqlite), TC_RESULT_OK);
    tc_key_ring *ring = ring_of(7);
    const tc_store *encrypted = encrypted_over(sqlite, ring, 0);
    tc_tiered_options *options = NULL;
    CHECK_RESULT(tc_tiered_options_new(&options), TC_RESULT_OK);
    CHECK_RESULT(tc_tiered_options_set_l1_max_bytes(options, 1 << 20), TC_RESULT_OK);
    CHECK_RESULT(tc_tiered_options_set_l1_expiration_ratio(options, 0.5), TC_RESULT_OK);
    const tc_store *tiered = NULL;
    CHECK_RESULT(tc_store_tiered_new(encrypted, options, &tiered), TC_RESULT_OK);
    tc_tiered_options_free(options);
    const tc_provider *provider = provider_over(tiered, NULL);
    save_user(provider, "u1.t1");
    CHECK(holds_user(provider, "u1.t1"));
    CHECK(!holds_user(provider, "u9.t9"));
    tc_store_stats s = store_stats(tiered);
    CHECK(s.layers == (TC_STORE_LAYER_TIERED | TC_STORE_LAYER_ENCRYPTED | TC_STORE_LAYER_SQLITE));
    CHECK(s.l1_hits == 1 && s.misses == 2 && s.l2_errors == 0 && s.l1_entries == 1);
    CHECK(s.circuit == TC_CIRCUIT_STATE_CLOSED);
    CHECK(s.l2_latency_p99_ns >= s.l2_latency_p50_ns && s.l2_latency_p99_ns > 0);
    const tc_store *nested = NULL;
    CHECK_RESULT(tc_store_tiered_new(tiered, NULL, &nested), TC_RESULT_INVALID_ARGUMENT);
    tc_provider_free(provider);
    tc_store_free(tiered);
    tc_store_free(encrypted);
    tc_store_free(sqlite);
    tc_key_ring_free(ring);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void file_backed_cache_writes_through(void) {
    char dir[] = "/tmp/tokencache-c-file-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL)) return;
    char path[256];
    snprintf(path, sizeof path, "%s/msal_token_cache.json", dir);
    const tc_cache *a = NULL, *b = NULL;
    CHECK_RESULT(tc_cache_open_file(path, 0, TC_ON_CORRUPT_MOVE_ASIDE_AND_FAIL, &a), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_open_file(path, 1000, TC_ON_CORRUPT_MOVE_ASIDE_AND_FAIL, &b), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(a, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    size_t text_len = 0;
    char *text = test_read_file(path, &text_len);
    CHECK(text != NULL && strstr(text, "user-rt") != NULL); /* written through at once */
    free(text);
    CHECK(test_cache_len(b) == test_cache_len(a)); /* b picked up a's write */
    uint64_t reads = 0, writes = 0;
    CHECK_RESULT(tc_cache_get_file_io(a, &reads, &writes), TC_RESULT_OK);
    CHECK(writes == 1);
    /* Replacing the document goes to the file, under its lock, and b sees it. */
    CHECK_RESULT(tc_cache_deserialize(a, NULL, 0), TC_RESULT_OK);
    text = test_read_file(path, &text_len);
    CHECK(text != NULL && strstr(text, "user-rt") == NULL);
    free(text);
    CHECK(test_cache_len(b) == 0);
    CHECK_RESULT(tc_cache_set_state_changed(a, true), TC_RESULT_UNSUPPORTED);
    CHECK_RESULT(tc_cache_open_file(path, 0, 9, &a), TC_RESULT_INVALID_ENUM);
    tc_cache_free(a);
    tc_cache_free(b);

    FILE *f = fopen(path, "w");
    if (CHECK(f != NULL)) {
        fputs("{ not json", f);
        fclose(f);
    }
    const tc_cache *c = NULL;
    CHECK_RESULT(tc_cache_open_file(path, 0, TC_ON_CORRUPT_MOVE_ASIDE_AND_FAIL, &c), TC_RESULT_CORRUPT);
    CHECK(c == NULL && test_last_error_contains("corrupt-"));
    CHECK_RESULT(tc_cache_open_file(path, 0, TC_ON_CORRUPT_MOVE_ASIDE_AND_FAIL, &c), TC_RESULT_OK);
    CHECK(test_cache_len(c) == 0);
    tc_cache_free(c);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* Threads that each open the file as a separate process would and add tokens at the
 * same time: every token is in the file at the end, one write per add. */
#define FILE_WRITERS 6
#define FILE_ADDS 20

static char shared_path[256];

static void *file_writer(void *arg) {
    size_t t = (size_t)arg;
    const tc_cache *cache = NULL;
    if (!CHECK_RESULT(tc_cache_open_file(shared_path, 20000, TC_ON_CORRUPT_MOVE_ASIDE_AND_FAIL, &cache), TC_RESULT_OK)) {
        return NULL;
    }
    for (int i = 0; i < FILE_ADDS; i++) {
        char tenant[32];
        snprintf(tenant, sizeof tenant, "writer-%zu-%d", t, i);
        char *event = test_app_event(tenant, TEST_GRAPH, tenant);
        CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
        free(event);
    }
    uint64_t reads = 0, writes = 0;
    CHECK_RESULT(tc_cache_get_file_io(cache, &reads, &writes), TC_RESULT_OK);
    CHECK(writes == FILE_ADDS);
    tc_cache_free(cache);
    return NULL;
}

static void file_writers_share_one_file(void) {
    char dir[] = "/tmp/tokencache-c-shared-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL)) return;
    snprintf(shared_path, sizeof shared_path, "%s/msal_token_cache.json", dir);
    pthread_t threads[FILE_WRITERS];
    for (size_t t = 0; t < FILE_WRITERS; t++) CHECK(pthread_create(&threads[t], NULL, file_writer, (void *)t) == 0);
    for (size_t t = 0; t < FILE_WRITERS; t++) pthread_join(threads[t], NULL);

    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_cache_open_file(shared_path, 0, TC_ON_CORRUPT_MOVE_ASIDE_AND_FAIL, &cache), TC_RESULT_OK);
    tc_bytes tokens = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, NULL, 0, NULL, TEST_NOW, &tokens),
                 TC_RESULT_OK);
    for (size_t t = 0; t < FILE_WRITERS; t++) {
        for (int i = 0; i < FILE_ADDS; i++) {
            char secret[40];
            snprintf(secret, sizeof secret, "\"writer-%zu-%d\"", t, i);
            CHECK(test_bytes_contain(&tokens, secret));
        }
    }
    tc_bytes_free(&tokens);
    tc_cache_free(cache);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void) {
    provider_saves_only_what_changed();
    provider_misuse_is_refused();
    concurrent_saves_merge();
    stale_l1_copies_are_dropped();
    sqlite_keeps_partitions_across_opens();
    encryption_with_a_wrong_key_is_a_typed_error();
    tiered_over_encrypted_over_sqlite_reports_every_layer();
    file_backed_cache_writes_through();
    file_writers_share_one_file();
    return test_finish("stores");
}
