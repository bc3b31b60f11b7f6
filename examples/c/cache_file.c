/* Load an MSAL token cache file, add a token, look it up, save the file.
 *
 *   cc cache_file.c $(pkg-config --cflags --libs tokencache) -o cache_file
 *   ./cache_file msal_token_cache.json
 *
 * The file is the one MSAL.NET, MSAL Python, msal-node, MSAL Java and MSAL Go share;
 * a missing file is an empty cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tokencache.h>

/* Prints what failed and why; returns false on failure. */
static bool ok(tc_result result, const char *what) {
    if (result == TC_RESULT_OK) {
        return true;
    }
    tc_bytes message = {NULL, 0};
    tc_last_error_message(&message);
    fprintf(stderr, "%s: %s (%u: %s)\n", what, (const char *)message.data, (unsigned)result,
            tc_result_describe(result));
    tc_bytes_free(&message);
    return false;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *data = malloc(size > 0 ? (size_t)size : 1);
    *len = data ? fread(data, 1, (size_t)size, f) : 0;
    fclose(f);
    return data;
}

static bool write_file(const char *path, const tc_bytes *document) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        return false;
    }
    bool written = fwrite(document->data, 1, document->len, f) == document->len;
    written = fclose(f) == 0 && written;
    return written && rename(tmp, path) == 0; /* readers never see half a file */
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "msal_token_cache.json";
    const tc_cache *cache = NULL;
    if (!ok(tc_cache_new(&cache), "create")) {
        return 1;
    }
    int status = 1;

    size_t len = 0;
    char *text = read_file(path, &len);
    if (text && !ok(tc_cache_deserialize(cache, (const uint8_t *)text, len), path)) {
        free(text);
        goto done;
    }
    free(text);

    /* What a confidential client hands its cache after a client-credentials token. */
    const char *event =
        "{\"client_id\": \"my-daemon\", \"scope\": [\"https://graph.microsoft.com/.default\"],"
        " \"token_endpoint\": \"https://login.microsoftonline.com/contoso/oauth2/v2.0/token\","
        " \"grant_type\": \"client_credentials\","
        " \"response\": {\"access_token\": \"example-access-token\", \"expires_in\": 3600, \"token_type\": \"Bearer\"}}";
    if (!ok(tc_cache_add_event(cache, event, TC_NOW), "add")) {
        goto done;
    }

    /* The typed hot path: no JSON in or out. */
    const char *const scopes[] = {"https://graph.microsoft.com/.default"};
    char secret[4096];
    size_t secret_len = 0;
    int64_t expires_on = 0;
    if (!ok(tc_cache_get_access_token(cache, NULL, "login.microsoftonline.com", "my-daemon", "contoso", scopes, 1,
                                      NULL, secret, sizeof secret, &secret_len, &expires_on),
            "look up")) {
        goto done;
    }
    printf("access token: %zu bytes, expires at %lld\n", secret_len, (long long)expires_on);

    size_t entries = 0;
    bool changed = false;
    ok(tc_cache_len(cache, &entries), "count");
    if (!ok(tc_cache_has_state_changed(cache, &changed), "changed")) {
        goto done;
    }
    if (changed) {
        tc_bytes document = {NULL, 0};
        if (!ok(tc_cache_serialize(cache, &document), "serialize")) {
            goto done;
        }
        bool saved = write_file(path, &document);
        tc_bytes_free(&document);
        if (!saved) {
            perror(path);
            goto done;
        }
        printf("saved %zu entries to %s\n", entries, path);
    }
    status = 0;
done:
    tc_cache_free(cache);
    return status;
}
