/* Shared helpers of the C tests: checks that count instead of aborting, the events
 * the tests add, and small conveniences around tc_bytes and the last error. */
#ifndef TOKENCACHE_TEST_SUPPORT_H
#define TOKENCACHE_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "tokencache.h"

#define TEST_ENV "login.microsoftonline.com"
#define TEST_CLIENT_ID "my-app"
#define TEST_GRAPH "https://graph.microsoft.com/.default"
#define TEST_NOW 1700000000LL

/* A user signs in (authorization code): access token "user-at", refresh token
 * "user-rt", an account and app metadata, all in partition "u1.t1". */
extern const char *const TEST_USER_EVENT;

/* Record a check; on failure print where and what. */
#define CHECK(cond) test_check((cond), #cond, __FILE__, __LINE__)
/* Check a call's tc_result; on failure also print the last error message. */
#define CHECK_RESULT(call, want) test_check_result((call), (want), #call, __FILE__, __LINE__)

bool test_check(bool ok, const char *what, const char *file, int line);
bool test_check_result(tc_result got, tc_result want, const char *what, const char *file, int line);
/* Prints the tally; returns the process exit code. */
int test_finish(const char *name);

/* The client-credentials event a confidential client adds (malloc'd). */
char *test_app_event(const char *tenant, const char *scope, const char *secret);
/* Whether this thread's last error message contains `needle`. */
bool test_last_error_contains(const char *needle);
/* Whether a tc_bytes holds exactly `text`. */
bool test_bytes_equal(const tc_bytes *bytes, const char *text);
/* Whether a tc_bytes contains `needle`. */
bool test_bytes_contain(const tc_bytes *bytes, const char *needle);
/* The first object of a JSON array of objects, as its own string (malloc'd), or NULL. */
char *test_first_object(const char *json_array);
/* Number of entries; aborts the check on failure. */
size_t test_cache_len(const tc_cache *cache);
/* A new cache, or NULL after a failed check. */
const tc_cache *test_new_cache(void);
/* A file's contents (malloc'd, NUL-terminated); NULL if unreadable. */
char *test_read_file(const char *path, size_t *len_out);
/* $TOKENCACHE_VECTORS, else ../shared/vectors. */
const char *test_vectors_dir(void);
/* An integer from the environment, or `fallback`. */
long test_env_long(const char *name, long fallback);

#endif
