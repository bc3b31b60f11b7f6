/* What no MSAL does, from C: request coalescing (threads in one process, and processes
 * sharing a SQLite lease), proactive refresh, and sharing mode. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

#define THREADS 16

static void pause_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* A fake token endpoint: counts its calls, takes a while, answers or fails. */
struct endpoint {
    atomic_int calls;
    bool fail;
    const char *secret;
    const char *tenant;
    const char *scope; /* NULL: TEST_GRAPH */
    int log_fd; /* when >= 0: one byte appended per call (calls across processes) */
    atomic_int *arrived; /* when set: wait until THREADS callers arrived before answering */
};

static bool fetch_token(void *user_data, tc_fetch_reply *reply) {
    struct endpoint *ep = user_data;
    atomic_fetch_add(&ep->calls, 1);
    if (ep->log_fd >= 0 && write(ep->log_fd, "x", 1) != 1) {
        return false;
    }
    /* Answer only once every caller has missed and is waiting (valgrind runs threads
     * one at a time, so a fixed pause alone is not enough). */
    for (int i = 0; ep->arrived && atomic_load(ep->arrived) < THREADS && i < 2000; i++) {
        pause_ms(10);
    }
    pause_ms(300);
    if (ep->fail) {
        tc_fetch_reply_set_error(reply, "the identity provider answered 503");
        return false;
    }
    char *event = test_app_event(ep->tenant, ep->scope ? ep->scope : TEST_GRAPH, ep->secret);
    tc_result r = tc_fetch_reply_set_event(reply, event);
    free(event);
    return r == TC_RESULT_OK;
}

static const tc_cache *shared_cache;
static tc_coalescer *shared_coalescer;
static struct endpoint shared_endpoint;
static atomic_int arrived;

struct outcome {
    tc_result result;
    char secret[64];
};

static void *miss_together(void *arg) {
    struct outcome *out = arg;
    atomic_fetch_add(&arrived, 1);
    const char *const scopes[] = {TEST_GRAPH};
    size_t len = 0;
    int64_t expires_on = 0;
    out->result = tc_cache_get_or_fetch_access_token(shared_cache, shared_coalescer, NULL, TEST_ENV, TEST_CLIENT_ID,
                                                     "contoso", scopes, 1, TEST_NOW, 0, fetch_token,
                                                     &shared_endpoint, out->secret, sizeof out->secret, &len,
                                                     &expires_on);
    return NULL;
}

static void run_threads(struct outcome *outcomes) {
    atomic_store(&arrived, 0);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        pthread_create(&threads[i], NULL, miss_together, &outcomes[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
    }
}

static void threads_missing_one_token_make_one_request(void) {
    shared_cache = test_new_cache();
    CHECK_RESULT(tc_coalescer_new(&shared_coalescer), TC_RESULT_OK);
    shared_endpoint = (struct endpoint){.secret = "fetched-at", .tenant = "contoso", .log_fd = -1, .arrived = &arrived};

    /* The endpoint fails: every waiter gets the failure once, nothing is cached. */
    shared_endpoint.fail = true;
    struct outcome outcomes[THREADS];
    memset(outcomes, 0, sizeof outcomes);
    run_threads(outcomes);
    CHECK(atomic_load(&shared_endpoint.calls) == 1);
    for (int i = 0; i < THREADS; i++) {
        CHECK_RESULT(outcomes[i].result, TC_RESULT_FETCH_FAILED);
    }
    CHECK(test_cache_len(shared_cache) == 0);

    /* It recovers: the next wave fetches again, once, and all get the token. */
    shared_endpoint.fail = false;
    memset(outcomes, 0, sizeof outcomes);
    run_threads(outcomes);
    CHECK(atomic_load(&shared_endpoint.calls) == 2);
    for (int i = 0; i < THREADS; i++) {
        CHECK_RESULT(outcomes[i].result, TC_RESULT_OK);
        CHECK(strcmp(outcomes[i].secret, "fetched-at") == 0);
    }

    /* Now it is cached: no call at all. */
    shared_endpoint.arrived = NULL;
    struct outcome again = {0};
    miss_together(&again);
    CHECK_RESULT(again.result, TC_RESULT_OK);
    CHECK(atomic_load(&shared_endpoint.calls) == 2);

    tc_coalesce_stats stats;
    CHECK_RESULT(tc_coalescer_get_stats(shared_coalescer, &stats), TC_RESULT_OK);
    CHECK(stats.fetches == 2 && stats.failures == 1 && stats.hits >= 1);
    CHECK(stats.coalesced + stats.hits == 2 * THREADS + 1 - 2);

    /* The failure message reached the caller; a callback that forgets the event fails. */
    shared_endpoint.fail = true;
    const char *const scopes[] = {"https://other.example/.default"};
    char secret[8];
    size_t len = 0;
    int64_t expires_on = 0;
    CHECK_RESULT(tc_cache_get_or_fetch_access_token(shared_cache, shared_coalescer, NULL, TEST_ENV, TEST_CLIENT_ID,
                                                    "contoso", scopes, 1, TEST_NOW, 0, fetch_token, &shared_endpoint,
                                                    secret, sizeof secret, &len, &expires_on),
                 TC_RESULT_FETCH_FAILED);
    CHECK(test_last_error_contains("503"));
    CHECK_RESULT(tc_cache_get_or_fetch_access_token(shared_cache, shared_coalescer, NULL, TEST_ENV, TEST_CLIENT_ID,
                                                    "contoso", scopes, 1, TEST_NOW, 0, NULL, NULL, secret,
                                                    sizeof secret, &len, &expires_on),
                 TC_RESULT_NULL_PARAMETER);
    /* A buffer too small still leaves the fetched token cached. */
    shared_endpoint.fail = false;
    shared_endpoint.scope = scopes[0];
    CHECK_RESULT(tc_cache_get_or_fetch_access_token(shared_cache, shared_coalescer, NULL, TEST_ENV, TEST_CLIENT_ID,
                                                    "contoso", scopes + 0, 1, TEST_NOW, 0, fetch_token,
                                                    &shared_endpoint, secret, 4, &len, &expires_on),
                 TC_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == strlen("fetched-at"));
    int calls = atomic_load(&shared_endpoint.calls);
    char enough[64];
    CHECK_RESULT(tc_cache_get_or_fetch_access_token(shared_cache, shared_coalescer, NULL, TEST_ENV, TEST_CLIENT_ID,
                                                    "contoso", scopes, 1, TEST_NOW, 0, fetch_token, &shared_endpoint,
                                                    enough, sizeof enough, &len, &expires_on),
                 TC_RESULT_OK);
    CHECK(strcmp(enough, "fetched-at") == 0 && atomic_load(&shared_endpoint.calls) == calls);

    tc_coalescer_free(shared_coalescer);
    tc_cache_free(shared_cache);
}

/* One child process of `processes_sharing_a_lease_make_one_request`: its own file-backed
 * cache and coalescer over the shared SQLite lease store. Exits 0 when it got the token. */
static int child(const char *cache_path, const char *db_path, int log_fd) {
    const tc_cache *cache = NULL;
    const tc_store *store = NULL;
    tc_coalescer *coalescer = NULL;
    int code = 1;
    if (tc_cache_open_file(cache_path, 0, TC_ON_CORRUPT_MOVE_ASIDE_AND_FAIL, &cache) == TC_RESULT_OK &&
        tc_store_sqlite_open(db_path, 5000, 0, &store) == TC_RESULT_OK &&
        tc_coalescer_new_with_lease(store, 0, &coalescer) == TC_RESULT_OK) {
        struct endpoint ep = {.secret = "one-for-all", .tenant = "fabrikam", .log_fd = log_fd};
        const char *const scopes[] = {TEST_GRAPH};
        char secret[64];
        size_t len = 0;
        int64_t expires_on = 0;
        tc_result r = tc_cache_get_or_fetch_access_token(cache, coalescer, NULL, TEST_ENV, TEST_CLIENT_ID, "fabrikam",
                                                         scopes, 1, TEST_NOW, 0, fetch_token, &ep, secret,
                                                         sizeof secret, &len, &expires_on);
        code = (r == TC_RESULT_OK && strcmp(secret, "one-for-all") == 0) ? 0 : 2;
        tc_coalesce_stats stats;
        if (code == 0 && tc_coalescer_get_stats(coalescer, &stats) == TC_RESULT_OK && stats.lease_errors != 0) {
            code = 3; /* fetched without a lease: the store failed */
        }
        if (code != 0) {
            fprintf(stderr, "child %d: result %u, exit %d\n", (int)getpid(), (unsigned)r, code);
            test_last_error_contains("");
        }
    }
    tc_coalescer_free(coalescer);
    tc_store_free(store);
    tc_cache_free(cache);
    return code;
}

static void processes_sharing_a_lease_make_one_request(void) {
    char dir[] = "/tmp/tokencache-c-lease-XXXXXX";
    if (!CHECK(mkdtemp(dir) != NULL)) return;
    char cache_path[256], db_path[256], log_path[256];
    snprintf(cache_path, sizeof cache_path, "%s/msal_token_cache.json", dir);
    snprintf(db_path, sizeof db_path, "%s/leases.db", dir);
    snprintf(log_path, sizeof log_path, "%s/requests", dir);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (!CHECK(log_fd >= 0)) return;

    /* A memory store can't hold leases other processes see. */
    const tc_store *memory = NULL;
    tc_coalescer *refused = NULL;
    CHECK_RESULT(tc_store_memory_new(0, &memory), TC_RESULT_OK);
    CHECK_RESULT(tc_coalescer_new_with_lease(memory, 0, &refused), TC_RESULT_INVALID_ARGUMENT);
    CHECK(refused == NULL);
    tc_store_free(memory);

    enum { PROCESSES = 4 };
    pid_t pids[PROCESSES];
    for (int i = 0; i < PROCESSES; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            _exit(child(cache_path, db_path, log_fd));
        }
    }
    for (int i = 0; i < PROCESSES; i++) {
        int status = 0;
        CHECK(pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    close(log_fd);
    size_t requests = 0;
    char *log = test_read_file(log_path, &requests);
    free(log);
    CHECK(requests == 1);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void tokens_due_for_refresh_are_reported_once(void) {
    const tc_cache *cache = test_new_cache();
    char *event = test_app_event("contoso", TEST_GRAPH, "soon-expiring");
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    tc_bytes due = {NULL, 0};
    /* Not due an hour ahead of expiry with a 5-minute horizon... */
    CHECK_RESULT(tc_cache_due_for_refresh(cache, TEST_NOW, 300, &due), TC_RESULT_OK);
    CHECK(test_bytes_equal(&due, "[]"));
    tc_bytes_free(&due);
    /* ...due 4 minutes before it. */
    CHECK_RESULT(tc_cache_due_for_refresh(cache, TEST_NOW + 3600 - 240, 300, &due), TC_RESULT_OK);
    CHECK(test_bytes_contain(&due, "contoso"));
    tc_bytes_free(&due);
    CHECK_RESULT(tc_cache_due_for_refresh(cache, TEST_NOW, -1, &due), TC_RESULT_INVALID_ARGUMENT);

    tc_refresh_watcher *watcher = NULL;
    CHECK_RESULT(tc_refresh_watcher_new(300, &watcher), TC_RESULT_OK);
    CHECK_RESULT(tc_refresh_watcher_poll(watcher, cache, TEST_NOW + 3600 - 240, &due), TC_RESULT_OK);
    CHECK(test_bytes_contain(&due, "soon-expiring"));
    tc_bytes_free(&due);
    CHECK_RESULT(tc_refresh_watcher_poll(watcher, cache, TEST_NOW + 3600 - 200, &due), TC_RESULT_OK);
    CHECK(test_bytes_equal(&due, "[]")); /* reported already */
    tc_bytes_free(&due);
    /* Renewed: a new issuance, reported again when it is due in turn. */
    event = test_app_event("contoso", TEST_GRAPH, "renewed");
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW + 3400), TC_RESULT_OK);
    free(event);
    CHECK_RESULT(tc_refresh_watcher_poll(watcher, cache, TEST_NOW + 3400 + 3600 - 100, &due), TC_RESULT_OK);
    CHECK(test_bytes_contain(&due, "renewed"));
    tc_bytes_free(&due);
    tc_refresh_watcher_free(watcher);
    tc_cache_free(cache);
}

static void sharing_mode_files_app_tokens_for_every_sdk(void) {
    const tc_cache *cache = test_new_cache();
    bool on = true;
    uint32_t mode = TC_SHARING_MODE_OFF;
    /* Auto by default, and not in effect on a document no other SDK wrote. */
    CHECK_RESULT(tc_cache_get_sharing_mode(cache, &mode), TC_RESULT_OK);
    CHECK(mode == TC_SHARING_MODE_AUTO);
    CHECK_RESULT(tc_cache_get_sharing(cache, &on), TC_RESULT_OK);
    CHECK(!on);
    CHECK_RESULT(tc_cache_set_sharing_mode(cache, 7), TC_RESULT_INVALID_ENUM);
    CHECK_RESULT(tc_cache_get_sharing_mode(cache, &mode), TC_RESULT_OK);
    CHECK(mode == TC_SHARING_MODE_AUTO);
    CHECK_RESULT(tc_cache_set_sharing(cache, true), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_get_sharing(cache, &on), TC_RESULT_OK);
    CHECK(on);
    CHECK_RESULT(tc_cache_get_sharing_mode(cache, &mode), TC_RESULT_OK);
    CHECK(mode == TC_SHARING_MODE_ON);
    char *event = test_app_event("contoso", TEST_GRAPH, "shared-at");
    CHECK_RESULT(tc_cache_add_event(cache, event, TEST_NOW), TC_RESULT_OK);
    free(event);
    tc_bytes doc = {NULL, 0};
    CHECK_RESULT(tc_cache_serialize(cache, &doc), TC_RESULT_OK);
    /* As msal-node files it: its cloud alias, "" for the app token's home account. */
    CHECK(test_bytes_contain(&doc, "\"-login.windows.net-accesstoken-my-app-contoso-"));
    CHECK(test_bytes_contain(&doc, "\"home_account_id\": \"\""));
    tc_bytes_free(&doc);
    /* Found under any alias of the cloud. */
    const char *const scopes[] = {TEST_GRAPH};
    char secret[64];
    size_t len = 0;
    int64_t expires_on = 0;
    CHECK_RESULT(tc_cache_get_access_token(cache, NULL, "login.microsoft.com", TEST_CLIENT_ID, "contoso", scopes, 1,
                                           NULL, secret, sizeof secret, &len, &expires_on),
                 TC_RESULT_OK);
    CHECK(strcmp(secret, "shared-at") == 0);
    CHECK_RESULT(tc_cache_set_sharing(NULL, true), TC_RESULT_NULL_PARAMETER);
    CHECK_RESULT(tc_cache_get_sharing_mode(cache, NULL), TC_RESULT_NULL_PARAMETER);
    tc_cache_free(cache);

    /* Auto: a document msal-node wrote turns sharing on when it is loaded. */
    cache = test_new_cache();
    const char *node_doc = "{\"RefreshToken\": {\"uid.utid-login.windows.net-refreshtoken-my-app---\": "
                           "{\"home_account_id\": \"uid.utid\", \"environment\": \"login.windows.net\", "
                           "\"credential_type\": \"RefreshToken\", \"client_id\": \"my-app\", "
                           "\"secret\": \"node-rt\"}}}";
    CHECK_RESULT(tc_cache_deserialize(cache, (const uint8_t *)node_doc, strlen(node_doc)), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_get_sharing(cache, &on), TC_RESULT_OK);
    CHECK(on);
    CHECK_RESULT(tc_cache_set_sharing_mode(cache, TC_SHARING_MODE_OFF), TC_RESULT_OK);
    CHECK_RESULT(tc_cache_get_sharing(cache, &on), TC_RESULT_OK);
    CHECK(!on);
    tc_cache_free(cache);
}

int main(void) {
    /* First, before any library thread exists: it forks. */
    processes_sharing_a_lease_make_one_request();
    threads_missing_one_token_make_one_request();
    tokens_due_for_refresh_are_reported_once();
    sharing_mode_files_app_tokens_for_every_sdk();
    return test_finish("beyond");
}
