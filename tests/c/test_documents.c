/* Whole documents and partitions: serialize, deserialize, partition blobs, suggested
 * expiry; bad documents fail with a code and change nothing. */
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static const tc_cache *populated(void) {
    const tc_cache *cache = test_new_cache();
    char *a = test_app_event("contoso", TEST_GRAPH, "s-contoso");
    char *b = test_app_event("fabrikam", TEST_GRAPH, "s-fabrikam");
    CHECK_RESULT(tc_cache_add_event(cache, a, TEST_NOW), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(cache, b, TEST_NOW), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    free(a);
    free(b);
    return cache;
}

static void whole_cache_round_trip(void) {
    const tc_cache *cache = populated();
    tc_bytes saved = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize(cache, &saved), TC_RESULT_OK);
    CHECK(strncmp((const char *)saved.data, "{\n    \"AccessToken\": {\n", 23) == 0);
    bool changed = true;
    CHECK_RESULT(tc_cache_has_state_changed(cache, &changed), TC_RESULT_OK);
    CHECK(!changed);

    const tc_cache *copy = test_new_cache();
    CHECK_RESULT(tc_cache_deserialize(copy, saved.data, saved.len), TC_RESULT_OK);
    CHECK(test_cache_len(copy) == test_cache_len(cache));
    tc_bytes again = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize(copy, &again), TC_RESULT_OK);
    CHECK(again.len == saved.len && memcmp(again.data, saved.data, saved.len) == 0);
    tc_bytes_free(&again);

    tc_bytes compact = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize_compact(copy, &compact), TC_RESULT_OK);
    CHECK(compact.len < saved.len && memchr(compact.data, '\n', compact.len) == NULL);
    /* The compact form loads too. */
    const tc_cache *third = test_new_cache();
    CHECK_RESULT(tc_cache_deserialize(third, compact.data, compact.len), TC_RESULT_OK);
    CHECK(test_cache_len(third) == test_cache_len(cache));
    tc_bytes_free(&compact);

    /* (NULL, 0) empties a cache. */
    CHECK_RESULT(tc_cache_deserialize(third, NULL, 0), TC_RESULT_OK);
    CHECK(test_cache_len(third) == 0);
    tc_bytes_free(&saved);
    tc_cache_free(third);
    tc_cache_free(copy);
    tc_cache_free(cache);
}

static void partitions(void) {
    const tc_cache *cache = populated();
    tc_bytes keys = {NULL, 0};
    CHECK_RESULT(tc_cache_partition_keys(cache, &keys), TC_RESULT_OK);
    CHECK(test_bytes_equal(&keys, "[\"my-app_contoso_AppTokenCache\",\"my-app_fabrikam_AppTokenCache\",\"u1.t1\"]"));
    tc_bytes_free(&keys);

    tc_bytes blob = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize_partition(cache, "u1.t1", &blob), TC_RESULT_OK);
    CHECK(test_bytes_contain(&blob, "user-rt") && !test_bytes_contain(&blob, "s-contoso"));
    CHECK(test_bytes_contain(&blob, "\"AppMetadata\""));

    size_t total = test_cache_len(cache), removed = 0;
    CHECK_RESULT(tc_cache_remove_partition(cache, "u1.t1", &removed), TC_RESULT_OK);
    CHECK(removed == 3 && test_cache_len(cache) == total - 3);
    CHECK_RESULT(tc_cache_remove_partition(cache, "nobody", &removed), TC_RESULT_OK);
    CHECK(removed == 0);

    CHECK_RESULT(tc_cache_deserialize_partition(cache, "u1.t1", blob.data, blob.len), TC_RESULT_OK);
    CHECK(test_cache_len(cache) == total);
    /* A blob holding another partition's entries is refused and changes nothing. */
    CHECK_RESULT(tc_cache_deserialize_partition(cache, "someone-else", blob.data, blob.len),
                 TC_RESULT_INVALID_ARGUMENT);
    CHECK(test_last_error_contains("partition"));
    CHECK(test_cache_len(cache) == total);
    /* (NULL, 0) empties one partition. */
    CHECK_RESULT(tc_cache_deserialize_partition(cache, "my-app_contoso_AppTokenCache", NULL, 0), TC_RESULT_OK);
    CHECK(test_cache_len(cache) == total - 1);
    tc_bytes_free(&blob);

    int64_t expiry = -1;
    CHECK_RESULT(tc_cache_suggested_expiry(cache, "my-app_fabrikam_AppTokenCache", TEST_NOW, &expiry), TC_RESULT_OK);
    CHECK(expiry == TEST_NOW + 3600);
    CHECK_RESULT(tc_cache_suggested_expiry(cache, "my-app_fabrikam_AppTokenCache", TEST_NOW + 7200, &expiry),
                 TC_RESULT_OK);
    CHECK(expiry == 0); /* never in the past */
    CHECK_RESULT(tc_cache_suggested_expiry(cache, "u1.t1", TEST_NOW, &expiry), TC_RESULT_OK);
    CHECK(expiry == 0); /* a refresh token keeps the partition */
    tc_cache_free(cache);
}

static void bad_documents_change_nothing(void) {
    const tc_cache *cache = populated();
    tc_bytes before = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize_compact(cache, &before), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_set_state_changed(cache, true), TC_RESULT_OK);

    struct {
        const char *text;
        tc_result want;
        const char *mentions;
    } cases[] = {
        {"[]", TC_RESULT_NOT_A_CACHE, "not_a_cache"},
        {"42", TC_RESULT_NOT_A_CACHE, "not_a_cache"},
        {"{\"AccessToken\": []}", TC_RESULT_NOT_A_CACHE, "not_a_cache"},
        {"{bad json", TC_RESULT_INVALID_JSON, "line 1"},
        {"{\n  \"AccessToken\": {\n    \"k\": {,}\n", TC_RESULT_INVALID_JSON, "line 3"},
        {"   ", TC_RESULT_INVALID_JSON, "invalid_json"},
        {"{}{}", TC_RESULT_INVALID_JSON, "invalid_json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_RESULT(tc_cache_deserialize(cache, (const uint8_t *)cases[i].text, strlen(cases[i].text)), cases[i].want);
        CHECK(test_last_error_contains(cases[i].mentions));
    }
    const uint8_t not_utf8[] = {'{', '"', 0xff, '"', ':', '1', '}'};
    CHECK_RESULT(tc_cache_deserialize(cache, not_utf8, sizeof not_utf8), TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_deserialize_partition(cache, "u1.t1", not_utf8, sizeof not_utf8), TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_deserialize_partition(cache, "u1.t1", (const uint8_t *)"[1]", 3), TC_RESULT_NOT_A_CACHE);

    tc_bytes after = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize_compact(cache, &after), TC_RESULT_OK);
    CHECK(after.len == before.len && memcmp(after.data, before.data, before.len) == 0);
    bool changed = false;
    CHECK_RESULT(tc_cache_has_state_changed(cache, &changed), TC_RESULT_OK);
    CHECK(changed); /* a failed load does not reset the flag */
    tc_bytes_free(&before);
    tc_bytes_free(&after);

    /* A UTF-8 BOM is fine. */
    const uint8_t bom[] = {0xef, 0xbb, 0xbf, '{', '}'};
    CHECK_RESULT(tc_cache_deserialize(cache, bom, sizeof bom), TC_RESULT_OK);
    CHECK(test_cache_len(cache) == 0);
    tc_cache_free(cache);
}

int main(void) {
    whole_cache_round_trip();
    partitions();
    bad_documents_change_nothing();
    return test_finish("documents");
}
