/* Adding token responses, looking tokens up (typed hot path and JSON search), and
 * changing or removing entries. */
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static const char *const graph[] = {TEST_GRAPH};

static void add_and_get_access_token(void) {
    const tc_cache *cache = test_new_cache();
    char *event = test_app_event("contoso", TEST_GRAPH, "at-contoso");
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    CHECK(test_cache_len(cache) == 2); /* the access token and app metadata */

    char secret[64];
    size_t len = 0;
    int64_t expires_on = 0;
    CHECK_RESULT(tc_cache_get_access_token(cache, NULL, TEST_ENV, TEST_CLIENT_ID, "contoso", graph, 1, NULL, secret,
                                           sizeof secret, &len, &expires_on),
                 TC_RESULT_OK);
    CHECK(len == 10 && strcmp(secret, "at-contoso") == 0);
    CHECK(expires_on == TEST_NOW + 3600);

    /* "" for home_account_id means the same as NULL; tenant ids are case-insensitive keys. */
    CHECK_RESULT(tc_cache_get_access_token(cache, "", TEST_ENV, TEST_CLIENT_ID, "CONTOSO", graph, 1, NULL, secret,
                                           sizeof secret, &len, &expires_on),
                 TC_RESULT_OK);

    /* Misses. */
    CHECK_RESULT(tc_cache_get_access_token(cache, NULL, TEST_ENV, TEST_CLIENT_ID, "fabrikam", graph, 1, NULL, secret,
                                           sizeof secret, &len, &expires_on),
                 TC_RESULT_NOT_FOUND);
    CHECK(test_last_error_contains("no access token"));
    const char *const other[] = {"https://storage.azure.com/.default"};
    CHECK_RESULT(tc_cache_get_access_token(cache, NULL, TEST_ENV, TEST_CLIENT_ID, "contoso", other, 1, NULL, secret,
                                           sizeof secret, &len, &expires_on),
                 TC_RESULT_NOT_FOUND);
    CHECK_RESULT(tc_cache_get_access_token(cache, NULL, TEST_ENV, TEST_CLIENT_ID, "contoso", graph, 1, "ext", secret,
                                           sizeof secret, &len, &expires_on),
                 TC_RESULT_NOT_FOUND);
    tc_cache_free(cache);
}

static void user_access_token(void) {
    const tc_cache *cache = test_new_cache();
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    const char *const scopes[] = {"User.Read"};
    char secret[16];
    size_t len = 0;
    int64_t expires_on = 0;
    CHECK_RESULT(tc_cache_get_access_token(cache, "u1.t1", TEST_ENV, TEST_CLIENT_ID, "t1", scopes, 1, NULL, secret,
                                           sizeof secret, &len, &expires_on),
                 TC_RESULT_OK);
    CHECK(strcmp(secret, "user-at") == 0);
    tc_cache_free(cache);
}

static void search_each_section(void) {
    const tc_cache *cache = test_new_cache();
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    const char *query = "{\"home_account_id\": \"u1.t1\", \"environment\": \"" TEST_ENV "\"}";
    const char *expect[] = {"\"secret\":\"user-at\"", "\"secret\":\"user-rt\"", NULL, "\"authority_type\":\"MSSTS\"",
                            "\"client_id\":\"" TEST_CLIENT_ID "\""};
    for (uint32_t ct = TC_CREDENTIAL_TYPE_ACCESS_TOKEN; ct <= TC_CREDENTIAL_TYPE_APP_METADATA; ct++) {
        tc_bytes found = {NULL, 0};
        const char *q = ct == TC_CREDENTIAL_TYPE_APP_METADATA ? NULL : query;
        CHECK_RESULT(tc_cache_search(cache, ct, NULL, 0, q, TEST_NOW, &found), TC_RESULT_OK);
        if (expect[ct]) {
            CHECK(test_bytes_contain(&found, expect[ct]));
        } else {
            CHECK(test_bytes_equal(&found, "[]")); /* no id_token in the event */
        }
        tc_bytes_free(&found);
    }
    /* Target filter and expiry: an access-token search drops expired tokens. */
    const char *const read[] = {"User.Read"};
    tc_bytes found = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, read, 1, NULL, TEST_NOW, &found), TC_RESULT_OK);
    CHECK(found.data[0] == '[' && test_bytes_contain(&found, "user-at"));
    tc_bytes_free(&found);
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, read, 1, NULL, TEST_NOW + 7200, &found),
                 TC_RESULT_OK);
    CHECK(test_bytes_equal(&found, "[]"));
    tc_bytes_free(&found);
    CHECK(test_cache_len(cache) == 3);
    tc_cache_free(cache);
}

static void app_metadata(void) {
    const tc_cache *cache = test_new_cache();
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    tc_bytes entry = {NULL, 0};
    CHECK_RESULT(tc_cache_get_app_metadata(cache, TEST_ENV, TEST_CLIENT_ID, &entry), TC_RESULT_OK);
    CHECK(test_bytes_equal(&entry, "{\"client_id\":\"" TEST_CLIENT_ID "\",\"environment\":\"" TEST_ENV "\"}"));
    tc_bytes_free(&entry);
    CHECK_RESULT(tc_cache_get_app_metadata(cache, TEST_ENV, "someone-else", &entry), TC_RESULT_NOT_FOUND);
    CHECK(entry.data == NULL);
    tc_cache_free(cache);
}

/* The one entry of `credential_type` the cache holds (malloc'd). */
static char *only_entry(const tc_cache *cache, uint32_t credential_type) {
    tc_bytes found = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, credential_type, NULL, 0, NULL, TEST_NOW, &found), TC_RESULT_OK);
    char *entry = test_first_object((const char *)found.data);
    tc_bytes_free(&found);
    CHECK(entry != NULL);
    return entry;
}

static void modify_update_and_remove(void) {
    const tc_cache *cache = test_new_cache();
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    size_t before = test_cache_len(cache);

    char *rt = only_entry(cache, TC_CREDENTIAL_TYPE_REFRESH_TOKEN);
    CHECK_RESULT(tc_cache_update_rt(cache, rt, "rotated-rt", TEST_NOW + 5), TC_RESULT_OK);
    free(rt);
    rt = only_entry(cache, TC_CREDENTIAL_TYPE_REFRESH_TOKEN);
    CHECK(strstr(rt, "\"secret\":\"rotated-rt\"") && strstr(rt, "\"last_modification_time\":\"1700000005\""));

    char *at = only_entry(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN);
    CHECK_RESULT(tc_cache_modify(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, at, "{\"secret\": \"changed\"}"), TC_RESULT_OK);
    char *changed = only_entry(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN);
    CHECK(strstr(changed, "\"secret\":\"changed\"") != NULL);
    free(changed);
    CHECK_RESULT(tc_cache_remove_at(cache, at), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_remove_rt(cache, rt), TC_RESULT_OK);
    char *account = only_entry(cache, TC_CREDENTIAL_TYPE_ACCOUNT);
    CHECK_RESULT(tc_cache_remove_account(cache, account), TC_RESULT_OK);
    CHECK(test_cache_len(cache) == before - 3);

    /* Wrong types are refused by core; nothing changes. */
    CHECK_RESULT(tc_cache_remove_rt(cache, at), TC_RESULT_INVALID_ENTRY);
    CHECK(test_last_error_contains("remove_rt needs"));
    CHECK_RESULT(tc_cache_remove_account(cache, rt), TC_RESULT_INVALID_ENTRY);
    free(at);
    free(rt);
    free(account);

    /* An ID token filed by modify, then removed by remove_idt; modify with NULL changes removes. */
    const char *idt = "{\"credential_type\": \"IdToken\", \"secret\": \"idt\", \"home_account_id\": \"u1.t1\","
                      " \"environment\": \"" TEST_ENV "\", \"realm\": \"t1\", \"client_id\": \"" TEST_CLIENT_ID "\"}";
    CHECK_RESULT(tc_cache_modify(cache, TC_CREDENTIAL_TYPE_ID_TOKEN, idt, "{\"secret\": \"idt2\"}"), TC_RESULT_OK);
    CHECK(test_cache_len(cache) == before - 2);
    CHECK_RESULT(tc_cache_remove_idt(cache, idt), TC_RESULT_OK);
    CHECK(test_cache_len(cache) == before - 3);
    CHECK_RESULT(tc_cache_modify(cache, TC_CREDENTIAL_TYPE_ID_TOKEN, idt, NULL), TC_RESULT_OK);
    tc_cache_free(cache);
}

static void changed_flag(void) {
    const tc_cache *cache = test_new_cache();
    bool changed = true;
    CHECK_RESULT(tc_cache_has_state_changed(cache, &changed), TC_RESULT_OK);
    CHECK(!changed);
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_has_state_changed(cache, &changed), TC_RESULT_OK);
    CHECK(changed);
    CHECK_RESULT(tc_cache_set_state_changed(cache, false), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_has_state_changed(cache, &changed), TC_RESULT_OK);
    CHECK(!changed);
    CHECK_RESULT(tc_cache_set_state_changed(cache, true), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_has_state_changed(cache, &changed), TC_RESULT_OK);
    CHECK(changed);
    tc_cache_free(cache);
}

static void partition_key_of_entries(void) {
    const tc_cache *cache = test_new_cache();
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    char *rt = only_entry(cache, TC_CREDENTIAL_TYPE_REFRESH_TOKEN);
    tc_bytes key = {NULL, 0};
    CHECK_RESULT(tc_partition_key(TC_CREDENTIAL_TYPE_REFRESH_TOKEN, rt, &key), TC_RESULT_OK);
    CHECK(test_bytes_equal(&key, "u1.t1"));
    tc_bytes_free(&key);
    free(rt);
    const char *app_at = "{\"credential_type\": \"AccessToken\", \"client_id\": \"c\", \"realm\": \"t\"}";
    CHECK_RESULT(tc_partition_key(TC_CREDENTIAL_TYPE_ACCESS_TOKEN, app_at, &key), TC_RESULT_OK);
    CHECK(test_bytes_equal(&key, "c_t_AppTokenCache"));
    tc_bytes_free(&key);
    CHECK_RESULT(tc_partition_key(TC_CREDENTIAL_TYPE_APP_METADATA, "{\"client_id\": \"c\"}", &key),
                 TC_RESULT_NOT_FOUND);
    CHECK(key.data == NULL);
    tc_cache_free(cache);
}

int main(void) {
    add_and_get_access_token();
    user_access_token();
    search_each_section();
    app_metadata();
    modify_update_and_remove();
    changed_flag();
    partition_key_of_entries();
    return test_finish("cache");
}
