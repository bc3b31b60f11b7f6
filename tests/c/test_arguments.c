/* Bad arguments: NULL for every pointer of every function, invalid UTF-8 in text,
 * integers that are not enum values, and buffers too small. Each fails with its code,
 * a message naming the argument, and no output written. */
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static int null_cases;

/* `call` passes valid pointers except the NULL `arg`. */
#define NULL_CASE(arg, call)                                                                \
    do {                                                                                   \
        CHECK_RESULT((call), TC_RESULT_NULL_PARAMETER);                                    \
        CHECK(test_last_error_contains("`" arg "`"));                                      \
        null_cases++;                                                                      \
    } while (0)

static void null_for_every_pointer(void) {
    const tc_cache *k = test_new_cache();
    char *event = test_app_event("contoso", TEST_GRAPH, "s");
    CHECK_RESULT(tc_cache_add_event(k, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    const char *t = "{}";
    const char *e = TEST_ENV;
    const char *const scopes[] = {TEST_GRAPH};
    const char *const *s = scopes;
    tc_bytes bytes = {NULL, 0};
    tc_bytes *b = &bytes;
    char buf[64];
    size_t n = 7;
    int64_t i = 7;
    uint64_t u = 7;
    bool flag = false;
    tc_cache_options *o = NULL;
    CHECK_RESULT(tc_cache_options_new(&o), TC_RESULT_OK);
    const tc_cache *new_cache = NULL;
    tc_cache_limits limits = {0, 0, 0, 0};
    tc_cache_stats stats;
    memset(&stats, 0, sizeof stats);
    const uint8_t *data = (const uint8_t *)"{}";
    const uint32_t at = TC_CREDENTIAL_TYPE_ACCESS_TOKEN;

    NULL_CASE("cache_out", tc_cache_new(NULL));
    NULL_CASE("options", tc_cache_new_with_options(NULL, &new_cache));
    NULL_CASE("cache_out", tc_cache_new_with_options(o, NULL));
    NULL_CASE("cache", tc_cache_add_event(NULL, t, 0));
    NULL_CASE("event_json", tc_cache_add_event(k, NULL, 0));
    NULL_CASE("cache", tc_cache_search(NULL, at, s, 1, t, 0, b));
    NULL_CASE("target", tc_cache_search(k, at, NULL, 1, t, 0, b));
    NULL_CASE("results_out", tc_cache_search(k, at, s, 1, t, 0, NULL));
    NULL_CASE("cache", tc_cache_get_access_token(NULL, NULL, e, e, e, s, 1, NULL, buf, 64, &n, &i));
    NULL_CASE("environment", tc_cache_get_access_token(k, NULL, NULL, e, e, s, 1, NULL, buf, 64, &n, &i));
    NULL_CASE("client_id", tc_cache_get_access_token(k, NULL, e, NULL, e, s, 1, NULL, buf, 64, &n, &i));
    NULL_CASE("realm", tc_cache_get_access_token(k, NULL, e, e, NULL, s, 1, NULL, buf, 64, &n, &i));
    NULL_CASE("scopes", tc_cache_get_access_token(k, NULL, e, e, e, NULL, 1, NULL, buf, 64, &n, &i));
    NULL_CASE("secret_out", tc_cache_get_access_token(k, NULL, e, e, e, s, 1, NULL, NULL, 64, &n, &i));
    NULL_CASE("secret_len_out", tc_cache_get_access_token(k, NULL, e, e, e, s, 1, NULL, buf, 64, NULL, &i));
    NULL_CASE("expires_on_out", tc_cache_get_access_token(k, NULL, e, e, e, s, 1, NULL, buf, 64, &n, NULL));
    NULL_CASE("cache", tc_cache_get_app_metadata(NULL, e, e, b));
    NULL_CASE("environment", tc_cache_get_app_metadata(k, NULL, e, b));
    NULL_CASE("client_id", tc_cache_get_app_metadata(k, e, NULL, b));
    NULL_CASE("entry_out", tc_cache_get_app_metadata(k, e, e, NULL));
    NULL_CASE("cache", tc_cache_modify(NULL, at, t, t));
    NULL_CASE("entry_json", tc_cache_modify(k, at, NULL, t));
    NULL_CASE("cache", tc_cache_remove_rt(NULL, t));
    NULL_CASE("rt_json", tc_cache_remove_rt(k, NULL));
    NULL_CASE("cache", tc_cache_update_rt(NULL, t, t, 0));
    NULL_CASE("rt_json", tc_cache_update_rt(k, NULL, t, 0));
    NULL_CASE("new_secret", tc_cache_update_rt(k, t, NULL, 0));
    NULL_CASE("cache", tc_cache_remove_at(NULL, t));
    NULL_CASE("at_json", tc_cache_remove_at(k, NULL));
    NULL_CASE("cache", tc_cache_remove_idt(NULL, t));
    NULL_CASE("idt_json", tc_cache_remove_idt(k, NULL));
    NULL_CASE("cache", tc_cache_remove_account(NULL, t));
    NULL_CASE("account_json", tc_cache_remove_account(k, NULL));
    NULL_CASE("cache", tc_cache_has_state_changed(NULL, &flag));
    NULL_CASE("changed_out", tc_cache_has_state_changed(k, NULL));
    NULL_CASE("cache", tc_cache_set_state_changed(NULL, true));
    NULL_CASE("cache", tc_cache_len(NULL, &n));
    NULL_CASE("len_out", tc_cache_len(k, NULL));
    NULL_CASE("cache", tc_cache_serialize(NULL, b));
    NULL_CASE("document_out", tc_cache_serialize(k, NULL));
    NULL_CASE("cache", tc_cache_serialize_compact(NULL, b));
    NULL_CASE("document_out", tc_cache_serialize_compact(k, NULL));
    NULL_CASE("cache", tc_cache_deserialize(NULL, data, 2));
    NULL_CASE("document", tc_cache_deserialize(k, NULL, 2));
    NULL_CASE("cache", tc_cache_partition_keys(NULL, b));
    NULL_CASE("keys_out", tc_cache_partition_keys(k, NULL));
    NULL_CASE("cache", tc_cache_serialize_partition(NULL, t, b));
    NULL_CASE("key", tc_cache_serialize_partition(k, NULL, b));
    NULL_CASE("blob_out", tc_cache_serialize_partition(k, t, NULL));
    NULL_CASE("cache", tc_cache_deserialize_partition(NULL, t, data, 2));
    NULL_CASE("key", tc_cache_deserialize_partition(k, NULL, data, 2));
    NULL_CASE("blob", tc_cache_deserialize_partition(k, t, NULL, 2));
    NULL_CASE("cache", tc_cache_remove_partition(NULL, t, &n));
    NULL_CASE("key", tc_cache_remove_partition(k, NULL, &n));
    NULL_CASE("removed_out", tc_cache_remove_partition(k, t, NULL));
    NULL_CASE("cache", tc_cache_suggested_expiry(NULL, t, 0, &i));
    NULL_CASE("key", tc_cache_suggested_expiry(k, NULL, 0, &i));
    NULL_CASE("expiry_out", tc_cache_suggested_expiry(k, t, 0, NULL));
    NULL_CASE("entry_json", tc_partition_key(at, NULL, b));
    NULL_CASE("key_out", tc_partition_key(at, t, NULL));
    NULL_CASE("options_out", tc_cache_options_new(NULL));
    NULL_CASE("options", tc_cache_options_set_max_entries(NULL, 1));
    NULL_CASE("options", tc_cache_options_set_max_bytes(NULL, 1));
    NULL_CASE("options", tc_cache_options_set_absolute_expiration(NULL, 1));
    NULL_CASE("options", tc_cache_options_set_sliding_expiration(NULL, 1));
    NULL_CASE("cache", tc_cache_get_limits(NULL, &limits));
    NULL_CASE("limits_out", tc_cache_get_limits(k, NULL));
    NULL_CASE("cache", tc_cache_purge_expired(NULL, 0, &u));
    NULL_CASE("removed_out", tc_cache_purge_expired(k, 0, NULL));
    NULL_CASE("cache", tc_cache_get_stats(NULL, &stats));
    NULL_CASE("stats_out", tc_cache_get_stats(k, NULL));
    NULL_CASE("cache", tc_cache_set_access_callbacks(NULL, NULL, NULL, NULL));
    NULL_CASE("message_out", tc_last_error_message(NULL));
    CHECK(null_cases == 73);

    /* Nothing was written. */
    CHECK(bytes.data == NULL && n == 7 && i == 7 && u == 7 && !flag && new_cache == NULL);
    CHECK(limits.max_entries == 0 && stats.entries == 0);
    /* The free functions take NULL. */
    tc_cache_free(NULL);
    tc_cache_options_free(NULL);
    tc_bytes_free(NULL);
    tc_cache_options_free(o);
    tc_cache_free(k);
}

static void invalid_utf8_in_every_kind_of_text(void) {
    const tc_cache *cache = test_new_cache();
    const char bad[] = {'{', (char)0xc3, '(', '}', 0};
    const char *const bad_scopes[] = {bad};
    const char *const good_scopes[] = {TEST_GRAPH};
    tc_bytes out = {NULL, 0};
    char buf[16];
    size_t n = 0;
    int64_t i = 0;
    CHECK_RESULT(tc_cache_add_event(cache, bad, 0), TC_RESULT_INVALID_UTF8);
    CHECK(test_last_error_contains("`event_json` is not UTF-8"));
    CHECK_RESULT(tc_cache_search(cache, 0, bad_scopes, 1, NULL, 0, &out), TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_search(cache, 0, NULL, 0, bad, 0, &out), TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_get_access_token(cache, bad, TEST_ENV, "c", "r", good_scopes, 1, NULL, buf, 16, &n, &i),
                 TC_RESULT_INVALID_UTF8);
    CHECK(test_last_error_contains("`home_account_id`"));
    CHECK_RESULT(tc_cache_get_access_token(cache, NULL, TEST_ENV, "c", "r", bad_scopes, 1, NULL, buf, 16, &n, &i),
                 TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_get_access_token(cache, NULL, TEST_ENV, "c", "r", good_scopes, 1, bad, buf, 16, &n, &i),
                 TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_modify(cache, 0, bad, NULL), TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_update_rt(cache, "{}", bad, 0), TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_serialize_partition(cache, bad, &out), TC_RESULT_INVALID_UTF8);
    CHECK_RESULT(tc_cache_deserialize(cache, (const uint8_t *)bad, strlen(bad)), TC_RESULT_INVALID_UTF8);
    CHECK(test_last_error_contains("offset 1"));
    CHECK(out.data == NULL && n == 0);
    tc_cache_free(cache);
}

static void integers_that_are_not_enum_values(void) {
    const tc_cache *cache = test_new_cache();
    tc_bytes out = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, 5, NULL, 0, NULL, 0, &out), TC_RESULT_INVALID_ENUM);
    CHECK(test_last_error_contains("5 is not a tc_credential_type"));
    CHECK_RESULT(tc_cache_search(cache, UINT32_MAX, NULL, 0, NULL, 0, &out), TC_RESULT_INVALID_ENUM);
    CHECK_RESULT(tc_cache_modify(cache, 77, "{}", NULL), TC_RESULT_INVALID_ENUM);
    CHECK_RESULT(tc_partition_key(TC_CREDENTIAL_TYPE_COUNT, "{}", &out), TC_RESULT_INVALID_ENUM);
    CHECK(out.data == NULL);
    tc_cache_free(cache);
}

static void secret_buffer_too_small(void) {
    const tc_cache *cache = test_new_cache();
    char *event = test_app_event("contoso", TEST_GRAPH, "0123456789");
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    const char *const scopes[] = {TEST_GRAPH};
    char buf[16];
    const size_t capacities[] = {0, 1, 9, 10};
    for (size_t c = 0; c < sizeof capacities / sizeof capacities[0]; c++) {
        memset(buf, '#', sizeof buf);
        size_t len = 0;
        int64_t expires_on = -1;
        char *target = capacities[c] == 0 ? NULL : buf; /* (NULL, 0) asks for the size */
        CHECK_RESULT(tc_cache_get_access_token(cache, NULL, TEST_ENV, TEST_CLIENT_ID, "contoso", scopes, 1, NULL,
                                               target, capacities[c], &len, &expires_on),
                     TC_RESULT_BUFFER_TOO_SMALL);
        CHECK(len == 10);           /* the size needed, minus the NUL */
        CHECK(expires_on == -1);    /* nothing else is written */
        CHECK(buf[0] == '#' && buf[9] == '#');
        CHECK(test_last_error_contains("needs 11 bytes"));
    }
    size_t len = 0;
    int64_t expires_on = 0;
    CHECK_RESULT(tc_cache_get_access_token(cache, NULL, TEST_ENV, TEST_CLIENT_ID, "contoso", scopes, 1, NULL, buf, 11,
                                           &len, &expires_on),
                 TC_RESULT_OK);
    CHECK(len == 10 && strcmp(buf, "0123456789") == 0 && expires_on == TEST_NOW + 3600);
    tc_cache_free(cache);
}

static void bad_json_arguments(void) {
    const tc_cache *cache = test_new_cache();
    tc_bytes out = {NULL, 0};
    CHECK_RESULT(tc_cache_add_event(cache, "{\"client_id\": ", 0), TC_RESULT_INVALID_JSON);
    CHECK_RESULT(tc_cache_add_event(cache, "[1, 2]", 0), TC_RESULT_INVALID_EVENT);
    CHECK_RESULT(tc_cache_add_event(cache, "{\"client_id\": \"c\", \"token_endpoint\": \"http://insecure/t\"}", 0),
                 TC_RESULT_INVALID_EVENT);
    CHECK_RESULT(tc_cache_search(cache, 0, NULL, 0, "{\"realm\": ", 0, &out), TC_RESULT_INVALID_JSON);
    CHECK_RESULT(tc_cache_search(cache, 0, NULL, 0, "\"realm\"", 0, &out), TC_RESULT_INVALID_ARGUMENT);
    CHECK(test_last_error_contains("`query_json` is not a JSON object"));
    CHECK_RESULT(tc_cache_remove_at(cache, "nope"), TC_RESULT_INVALID_JSON);
    CHECK_RESULT(tc_cache_remove_at(cache, "[]"), TC_RESULT_INVALID_ENTRY);
    CHECK_RESULT(tc_cache_modify(cache, 0, "{\"credential_type\": \"AccessToken\"}", "[]"), TC_RESULT_INVALID_ENTRY);
    CHECK(out.data == NULL && test_cache_len(cache) == 0);
    tc_cache_free(cache);
}

int main(void) {
    null_for_every_pointer();
    invalid_utf8_in_every_kind_of_text();
    integers_that_are_not_enum_values();
    secret_buffer_too_small();
    bad_json_arguments();
    return test_finish("arguments");
}
