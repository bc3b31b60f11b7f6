/* Every cache file in the shared vectors ($TOKENCACHE_VECTORS, else ../shared/vectors)
 * through the C ABI: loaded, written back, loaded again; msal Python's files byte for
 * byte; every partition exported and imported into a fresh cache. The two files that
 * are not caches fail with TC_RESULT_NOT_A_CACHE. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static const char *const not_caches[] = {"dotnet__cachecompat_dotnet_dictionary.bin", "msaljs__cacheStore.json"};

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_not_a_cache(const char *name) {
    for (size_t i = 0; i < sizeof not_caches / sizeof not_caches[0]; i++) {
        if (strcmp(name, not_caches[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Exports every partition of `from` and imports it into a fresh cache; returns how many. */
static int partitions_round_trip(const char *name, const char *text, size_t len) {
    const tc_cache *from = test_new_cache();
    const tc_cache *to = test_new_cache();
    CHECK_RESULT(tc_cache_deserialize(from, (const uint8_t *)text, len), TC_RESULT_OK);
    tc_bytes keys = {NULL, 0};
    CHECK_RESULT(tc_cache_partition_keys(from, &keys), TC_RESULT_OK);
    int count = 0;
    /* keys is a JSON array of strings; the vectors' keys hold no escapes. */
    const char *p = (const char *)keys.data;
    while ((p = strchr(p, '"')) != NULL) {
        const char *end = strchr(p + 1, '"');
        if (!end) {
            break;
        }
        size_t n = (size_t)(end - p - 1);
        char *key = malloc(n + 1);
        memcpy(key, p + 1, n);
        key[n] = 0;
        tc_bytes blob = {NULL, 0};
        CHECK_RESULT(tc_cache_serialize_partition(from, key, &blob), TC_RESULT_OK);
        if (!CHECK_RESULT(tc_cache_deserialize_partition(to, key, blob.data, blob.len), TC_RESULT_OK)) {
            fprintf(stderr, "%s: partition %s\n", name, key);
        }
        tc_bytes_free(&blob);
        free(key);
        count++;
        p = end + 1;
    }
    tc_bytes to_keys = {NULL, 0};
    CHECK_RESULT(tc_cache_partition_keys(to, &to_keys), TC_RESULT_OK);
    CHECK(to_keys.len == keys.len); /* the same keys (order may differ) */
    tc_bytes_free(&to_keys);
    tc_bytes_free(&keys);
    tc_cache_free(from);
    tc_cache_free(to);
    return count;
}

static bool check_file(const char *dir, const char *name, int *partitions) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len = 0;
    char *text = test_read_file(path, &len);
    if (!CHECK(text != NULL)) {
        return false;
    }
    const tc_cache *cache = test_new_cache();
    if (is_not_a_cache(name)) {
        CHECK_RESULT(tc_cache_deserialize(cache, (const uint8_t *)text, len), TC_RESULT_NOT_A_CACHE);
        CHECK(test_cache_len(cache) == 0);
        tc_cache_free(cache);
        free(text);
        return false;
    }
    bool ok = CHECK_RESULT(tc_cache_deserialize(cache, (const uint8_t *)text, len), TC_RESULT_OK);
    tc_bytes once = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize(cache, &once), TC_RESULT_OK);
    if (strncmp(name, "msal_python_", 12) == 0) {
        ok &= CHECK(once.len == len && memcmp(once.data, text, len) == 0);
    }
    const tc_cache *again = test_new_cache();
    CHECK_RESULT(tc_cache_deserialize(again, once.data, once.len), TC_RESULT_OK);
    tc_bytes twice = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize(again, &twice), TC_RESULT_OK);
    ok &= CHECK(twice.len == once.len && memcmp(twice.data, once.data, once.len) == 0);
    ok &= CHECK(test_cache_len(again) == test_cache_len(cache));
    if (!ok) {
        fprintf(stderr, "vector %s failed\n", name);
    }
    *partitions += partitions_round_trip(name, text, len);
    tc_bytes_free(&once);
    tc_bytes_free(&twice);
    tc_cache_free(again);
    tc_cache_free(cache);
    free(text);
    return ok;
}

int main(void) {
    const char *dir = test_vectors_dir();
    DIR *d = opendir(dir);
    if (!CHECK(d != NULL)) {
        fprintf(stderr, "cannot open the vectors at %s (set TOKENCACHE_VECTORS)\n", dir);
        return test_finish("vectors");
    }
    int caches = 0, partitions = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        if (!(ends_with(name, ".json") || ends_with(name, ".bin")) || ends_with(name, ".events.json") ||
            strcmp(name, "manifest.json") == 0) {
            continue;
        }
        caches += check_file(dir, name, &partitions);
    }
    closedir(d);
    printf("vectors: %d caches round-tripped, %d partitions moved\n", caches, partitions);
    CHECK(caches >= 29);
    CHECK(partitions > 0);
    return test_finish("vectors");
}
