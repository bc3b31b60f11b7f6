/* Before/after-access callbacks and the log callback: what they are told, and that
 * they may call back into the library, on the same cache, without deadlock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#define MAX_SEEN 64

typedef struct {
    bool after;
    tc_operation operation;
    bool has_credential_type;
    tc_credential_type credential_type;
    char partition_key[128];
    bool has_state_changed;
    int64_t suggested_expiry;
    size_t len_inside;
} seen_event;

typedef struct {
    const tc_cache *cache;
    seen_event seen[MAX_SEEN];
    int count;
    int depth;        /* re-entrant calls in progress */
    int saves;        /* partitions "saved" by the after callback */
    bool save_on_write;
} recorder;

static void record(recorder *r, const tc_access_event *event, bool after) {
    if (r->count >= MAX_SEEN) {
        return;
    }
    seen_event *s = &r->seen[r->count++];
    s->after = after;
    s->operation = event->operation;
    s->has_credential_type = event->has_credential_type;
    s->credential_type = event->credential_type;
    s->partition_key[0] = 0;
    if (event->partition_key) {
        CHECK(strlen(event->partition_key) == event->partition_key_len);
        snprintf(s->partition_key, sizeof s->partition_key, "%s", event->partition_key);
    } else {
        CHECK(event->partition_key_len == 0);
    }
    s->has_state_changed = event->has_state_changed;
    s->suggested_expiry = event->suggested_expiry;
    /* Re-enter the same cache: reads are fine from inside a callback. */
    s->len_inside = test_cache_len(r->cache);
}

static void on_before(void *user_data, const tc_access_event *event) {
    record(user_data, event, false);
}

/* The MSAL token-cache-callback pattern: after a write, save the partition. Saving
 * serializes the partition from inside the callback, which notifies again. */
static void on_after(void *user_data, const tc_access_event *event) {
    recorder *r = user_data;
    record(r, event, true);
    if (r->save_on_write && r->depth == 0 && event->has_state_changed && event->partition_key) {
        r->depth++;
        tc_bytes blob = {NULL, 0};
        CHECK_RESULT(tc_cache_serialize_partition(r->cache, event->partition_key, &blob), TC_RESULT_OK);
        CHECK(blob.len > 2);
        tc_bytes_free(&blob);
        r->saves++;
        r->depth--;
    }
}

static void callbacks_see_each_operation(void) {
    const tc_cache *cache = test_new_cache();
    recorder *r = calloc(1, sizeof *r);
    r->cache = cache;
    CHECK_RESULT(tc_cache_set_access_callbacks(cache, on_before, on_after, r), TC_RESULT_OK);

    char *event = test_app_event("contoso", TEST_GRAPH, "s");
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    CHECK(r->count == 2);
    CHECK(!r->seen[0].after && r->seen[0].operation == TC_OPERATION_ADD);
    CHECK(strcmp(r->seen[0].partition_key, "my-app_contoso_AppTokenCache") == 0);
    CHECK(r->seen[0].len_inside == 0);
    CHECK(r->seen[1].after && r->seen[1].has_state_changed && r->seen[1].len_inside == 2);
    CHECK(r->seen[1].suggested_expiry > 0);
    CHECK(!r->seen[1].has_credential_type);

    r->count = 0;
    const char *const graph[] = {TEST_GRAPH};
    const char *query = "{\"client_id\": \"" TEST_CLIENT_ID "\", \"realm\": \"contoso\", \"home_account_id\": null}";
    tc_bytes found = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, graph, 1, query, TEST_NOW, &found),
                 TC_RESULT_OK);
    tc_bytes_free(&found);
    CHECK(r->count == 2 && r->seen[0].operation == TC_OPERATION_SEARCH);
    CHECK(r->seen[0].has_credential_type && r->seen[0].credential_type == TC_CREDENTIAL_TYPE_ACCESS_TOKEN);
    CHECK(strcmp(r->seen[0].partition_key, "my-app_contoso_AppTokenCache") == 0);

    r->count = 0;
    tc_bytes saved = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize(cache, &saved), TC_RESULT_OK);
    CHECK(r->count == 2 && r->seen[1].operation == TC_OPERATION_SERIALIZE && !r->seen[1].has_state_changed);
    r->count = 0;
    CHECK_RESULT(tc_cache_deserialize(cache, saved.data, saved.len), TC_RESULT_OK);
    CHECK(r->count == 2 && r->seen[0].operation == TC_OPERATION_DESERIALIZE);
    tc_bytes_free(&saved);

    /* Only an after callback; then none. */
    r->count = 0;
    CHECK_RESULT(tc_cache_set_access_callbacks(cache, NULL, on_after, r), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_set_state_changed(cache, true), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_serialize(cache, &saved), TC_RESULT_OK);
    tc_bytes_free(&saved);
    CHECK(r->count == 1 && r->seen[0].after);
    CHECK_RESULT(tc_cache_set_access_callbacks(cache, NULL, NULL, NULL), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_serialize(cache, &saved), TC_RESULT_OK);
    tc_bytes_free(&saved);
    CHECK(r->count == 1);
    tc_cache_free(cache);
    free(r);
}

static void callbacks_reenter_to_save_partitions(void) {
    const tc_cache *cache = test_new_cache();
    recorder *r = calloc(1, sizeof *r);
    r->cache = cache;
    r->save_on_write = true;
    CHECK_RESULT(tc_cache_set_access_callbacks(cache, on_before, on_after, r), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(cache, TEST_USER_EVENT, TEST_NOW), TC_RESULT_OK);
    CHECK(r->saves == 1);
    /* The after-callback's own serialize notified too (before + after, nested). */
    CHECK(r->count == 4);
    CHECK(r->seen[2].operation == TC_OPERATION_SERIALIZE && strcmp(r->seen[2].partition_key, "u1.t1") == 0);
    tc_cache_free(cache);
    free(r);
}

/* An after callback that writes to the same cache from inside the callback. */
static void write_from_callback(void *user_data, const tc_access_event *event) {
    recorder *r = user_data;
    if (r->depth > 0 || event->operation != TC_OPERATION_SEARCH) {
        return;
    }
    r->depth++;
    char *more = test_app_event("written-in-callback", TEST_GRAPH, "x");
    CHECK_RESULT(tc_cache_add_event(r->cache, more, TEST_NOW), TC_RESULT_OK);
    free(more);
    r->depth--;
    r->saves++;
}

static void callbacks_may_write(void) {
    const tc_cache *cache = test_new_cache();
    recorder *r = calloc(1, sizeof *r);
    r->cache = cache;
    CHECK_RESULT(tc_cache_set_access_callbacks(cache, NULL, write_from_callback, r), TC_RESULT_OK);
    tc_bytes found = {NULL, 0};
    CHECK_RESULT(tc_cache_search(cache, TC_CREDENTIAL_TYPE_ACCESS_TOKEN, NULL, 0, NULL, TEST_NOW, &found),
                 TC_RESULT_OK);
    tc_bytes_free(&found);
    CHECK(r->saves == 1 && test_cache_len(cache) == 2);
    tc_cache_free(cache);
    free(r);
}

typedef struct {
    const tc_cache *cache;
    int debug_messages;
    int total;
    bool saw_secret;
} log_sink;

static void on_log(void *user_data, tc_log_level level, const char *message, size_t message_len) {
    log_sink *sink = user_data;
    CHECK(strlen(message) == message_len);
    sink->total++;
    if (level == TC_LOG_LEVEL_DEBUG && strstr(message, "evicted")) {
        sink->debug_messages++;
    }
    if (strstr(message, "secret-value")) {
        sink->saw_secret = true;
    }
    /* Re-enter the library from the log callback. */
    tc_cache_stats stats;
    CHECK_RESULT(tc_cache_get_stats(sink->cache, &stats), TC_RESULT_OK);
    CHECK(tc_version() != NULL);
}

static void log_callback(void) {
    tc_cache_options *options = NULL;
    CHECK_RESULT(tc_cache_options_new(&options), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_options_set_max_entries(options, 2), TC_RESULT_OK);
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_cache_new_with_options(options, &cache), TC_RESULT_OK);
    tc_cache_options_free(options);

    log_sink sink = {cache, 0, 0, false};
    CHECK_RESULT(tc_set_log_callback(on_log, &sink, TC_LOG_LEVEL_DEBUG), TC_RESULT_OK);
    const char *tenants[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        char *event = test_app_event(tenants[i], TEST_GRAPH, "secret-value");
        CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
        free(event);
    }
    CHECK(sink.debug_messages >= 1);
    CHECK(!sink.saw_secret);

    /* At WARN, debug messages are filtered; NULL turns logging off. */
    int total = sink.total;
    CHECK_RESULT(tc_set_log_callback(on_log, &sink, TC_LOG_LEVEL_WARN), TC_RESULT_OK);
    char *event = test_app_event("e", TEST_GRAPH, "s");
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    CHECK(sink.total == total);
    CHECK_RESULT(tc_set_log_callback(NULL, NULL, 0), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    CHECK(sink.total == total);
    CHECK_RESULT(tc_set_log_callback(on_log, &sink, 9), TC_RESULT_INVALID_ENUM);
    tc_cache_free(cache);
}

int main(void) {
    callbacks_see_each_operation();
    callbacks_reenter_to_save_partitions();
    callbacks_may_write();
    log_callback();
    return test_finish("callbacks");
}
