/* Creating and releasing things: caches, options, buffers; the version, result names
 * and the last error message. */
#include <stdint.h>
#include <string.h>

#include "test_support.h"

static void version_and_result_names(void) {
    const char *version = tc_version(); /* "MAJOR.MINOR.PATCH" */
    CHECK(version != NULL && version[0] >= '0' && version[0] <= '9' && strchr(version, '.') != NULL);
    CHECK(strcmp(tc_result_describe(TC_RESULT_OK), "ok") == 0);
    const tc_result every_code[] = {
        TC_RESULT_NULL_PARAMETER, TC_RESULT_INVALID_UTF8,   TC_RESULT_INVALID_ENUM,
        TC_RESULT_BUFFER_TOO_SMALL, TC_RESULT_INVALID_ARGUMENT, TC_RESULT_INVALID_JSON,
        TC_RESULT_NOT_A_CACHE,    TC_RESULT_INVALID_EVENT,  TC_RESULT_INVALID_ENTRY,
        TC_RESULT_NOT_FOUND,      TC_RESULT_FETCH_FAILED,   TC_RESULT_IO,             TC_RESULT_LOCK_TIMEOUT,
        TC_RESULT_CORRUPT,        TC_RESULT_STORE_UNAVAILABLE, TC_RESULT_KEY_MISMATCH,
        TC_RESULT_DECRYPTION_FAILED, TC_RESULT_PANIC,       TC_RESULT_LOGGER_UNAVAILABLE,
        TC_RESULT_UNSUPPORTED,
    };
    for (size_t i = 0; i < sizeof every_code / sizeof every_code[0]; i++) {
        const char *name = tc_result_describe(every_code[i]);
        CHECK(name != NULL && strcmp(name, "unknown result") != 0 && strcmp(name, "ok") != 0);
    }
    CHECK(strcmp(tc_result_describe(1), "unknown result") == 0);
    CHECK(strcmp(tc_result_describe(UINT32_MAX), "unknown result") == 0);
    CHECK(TC_RESULT_INVALID_JSON / 1000 == 2 && TC_RESULT_NULL_PARAMETER / 1000 == 1);
}

static void cache_new_and_free(void) {
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_cache_new(&cache), TC_RESULT_OK);
    CHECK(cache != NULL);
    CHECK(test_cache_len(cache) == 0);
    bool changed = true;
    CHECK_RESULT(tc_cache_has_state_changed(cache, &changed), TC_RESULT_OK);
    CHECK(!changed);
    tc_cache_free(cache);
    tc_cache_free(NULL);
}

static void options_build_bounded_caches(void) {
    tc_cache_options *options = NULL;
    CHECK_RESULT(tc_cache_options_new(&options), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_max_entries(options, 100), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_max_bytes(options, 1 << 20), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_absolute_expiration(options, 86400), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_sliding_expiration(options, 3600), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_absolute_expiration(options, -5), TC_RESULT_INVALID_ARGUMENT);
    CHECK(test_last_error_contains("negative"));
    CHECK_RESULT(tc_cache_options_set_sliding_expiration(options, -1), TC_RESULT_INVALID_ARGUMENT);

    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_cache_new_with_options(options, &cache), TC_RESULT_OK);
    tc_cache_options_free(options); /* the cache keeps its own copy */
    tc_cache_options_free(NULL);

    tc_cache_limits limits;
    memset(&limits, 0xab, sizeof limits);
    CHECK_RESULT(tc_cache_get_limits(cache, &limits), TC_RESULT_OK);
    CHECK(limits.max_entries == 100 && limits.max_bytes == (1 << 20));
    CHECK(limits.absolute_expiration_secs == 86400 && limits.sliding_expiration_secs == 3600);
    tc_cache_free(cache);

    /* Unbounded: every limit reads back as 0. */
    cache = test_new_cache();
    CHECK_RESULT(tc_cache_get_limits(cache, &limits), TC_RESULT_OK);
    CHECK(limits.max_entries == 0 && limits.max_bytes == 0);
    CHECK(limits.absolute_expiration_secs == 0 && limits.sliding_expiration_secs == 0);
    tc_cache_free(cache);
}

static void bytes_are_nul_terminated_and_freed_once(void) {
    const tc_cache *cache = test_new_cache();
    tc_bytes document = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize(cache, &document), TC_RESULT_OK);
    CHECK(test_bytes_equal(&document, "{}"));
    tc_bytes_free(&document);
    CHECK(document.data == NULL && document.len == 0);
    tc_bytes_free(&document); /* now {NULL, 0}: a no-op */
    tc_bytes_free(NULL);
    tc_cache_free(cache);
}

static void last_error_message(void) {
    tc_bytes message = {NULL, 0};
    CHECK_RESULT(tc_last_error_message(&message), TC_RESULT_OK);
    CHECK(message.data != NULL); /* "" or an earlier failure's message */
    tc_bytes_free(&message);

    const tc_cache *cache = test_new_cache();
    CHECK_RESULT(tc_cache_add_event(cache, "{\"client_id\": ", TEST_NOW), TC_RESULT_INVALID_JSON);
    CHECK(test_last_error_contains("invalid_json"));
    CHECK(test_last_error_contains("line 1"));
    /* A later success does not clear it (errno-like). */
    CHECK(test_cache_len(cache) == 0);
    CHECK(test_last_error_contains("invalid_json"));
    tc_cache_free(cache);
}

int main(void) {
    version_and_result_names();
    cache_new_and_free();
    options_build_bounded_caches();
    bytes_are_nul_terminated_and_freed_once();
    last_error_message();
    return test_finish("lifecycle");
}
