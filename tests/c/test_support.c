#include "test_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const TEST_USER_EVENT =
    "{\"client_id\": \"" TEST_CLIENT_ID "\", \"scope\": [\"User.Read\"],"
    " \"token_endpoint\": \"https://" TEST_ENV "/t1/oauth2/v2.0/token\","
    " \"grant_type\": \"authorization_code\", \"environment\": \"" TEST_ENV "\","
    " \"response\": {\"access_token\": \"user-at\", \"refresh_token\": \"user-rt\", \"expires_in\": 3600,"
    " \"client_info\": \"eyJ1aWQiOiJ1MSIsInV0aWQiOiJ0MSJ9\", \"token_type\": \"Bearer\"}}";

static int passed;
static int failed;

bool test_check(bool ok, const char *what, const char *file, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    }
    return ok;
}

bool test_check_result(tc_result got, tc_result want, const char *what, const char *file, int line) {
    if (got == want) {
        passed++;
        return true;
    }
    failed++;
    tc_bytes message = {NULL, 0};
    tc_last_error_message(&message);
    fprintf(stderr, "%s:%d: %s returned %u (%s), expected %u (%s); last error: %s\n", file, line, what,
            (unsigned)got, tc_result_describe(got), (unsigned)want, tc_result_describe(want),
            message.data ? (const char *)message.data : "");
    tc_bytes_free(&message);
    return false;
}

int test_finish(const char *name) {
    printf("%s: %d checks passed, %d failed\n", name, passed, failed);
    return failed == 0 ? 0 : 1;
}

char *test_app_event(const char *tenant, const char *scope, const char *secret) {
    const char *format =
        "{\"client_id\": \"" TEST_CLIENT_ID "\", \"scope\": [\"%s\"],"
        " \"token_endpoint\": \"https://" TEST_ENV "/%s/oauth2/v2.0/token\","
        " \"grant_type\": \"client_credentials\", \"environment\": \"" TEST_ENV "\","
        " \"response\": {\"access_token\": \"%s\", \"expires_in\": 3600, \"token_type\": \"Bearer\"}}";
    int n = snprintf(NULL, 0, format, scope, tenant, secret);
    char *out = malloc((size_t)n + 1);
    if (out) {
        snprintf(out, (size_t)n + 1, format, scope, tenant, secret);
    }
    return out;
}

bool test_last_error_contains(const char *needle) {
    tc_bytes message = {NULL, 0};
    if (tc_last_error_message(&message) != TC_RESULT_OK) {
        return false;
    }
    bool found = test_bytes_contain(&message, needle);
    if (!found) {
        fprintf(stderr, "last error \"%s\" lacks \"%s\"\n", (const char *)message.data, needle);
    }
    tc_bytes_free(&message);
    return found;
}

bool test_bytes_equal(const tc_bytes *bytes, const char *text) {
    size_t n = strlen(text);
    return bytes->data != NULL && bytes->len == n && memcmp(bytes->data, text, n) == 0 && bytes->data[n] == 0;
}

bool test_bytes_contain(const tc_bytes *bytes, const char *needle) {
    /* Library buffers are NUL-terminated, so strstr is safe on them. */
    return bytes->data != NULL && strstr((const char *)bytes->data, needle) != NULL;
}

char *test_first_object(const char *json) {
    const char *start = strchr(json, '{');
    if (!start) {
        return NULL;
    }
    int depth = 0;
    bool in_string = false;
    for (const char *p = start; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1]) {
                p++;
            } else if (*p == '"') {
                in_string = false;
            }
        } else if (*p == '"') {
            in_string = true;
        } else if (*p == '{') {
            depth++;
        } else if (*p == '}' && --depth == 0) {
            size_t n = (size_t)(p - start) + 1;
            char *out = malloc(n + 1);
            if (out) {
                memcpy(out, start, n);
                out[n] = 0;
            }
            return out;
        }
    }
    return NULL;
}

size_t test_cache_len(const tc_cache *cache) {
    size_t n = (size_t)-1;
    CHECK_RESULT(tc_cache_len(cache, &n), TC_RESULT_OK);
    return n;
}

const tc_cache *test_new_cache(void) {
    const tc_cache *cache = NULL;
    CHECK_RESULT(tc_cache_new(&cache), TC_RESULT_OK);
    return cache;
}

char *test_read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[len] = 0;
        *len_out = len;
    }
    return buf;
}

const char *test_vectors_dir(void) {
    const char *dir = getenv("TOKENCACHE_VECTORS");
    return dir && *dir ? dir : "../shared/vectors";
}

long test_env_long(const char *name, long fallback) {
    const char *value = getenv(name);
    return value && *value ? strtol(value, NULL, 10) : fallback;
}
