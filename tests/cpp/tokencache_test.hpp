// What the C++ tests share: RAII owners for the library's handles and buffers, and
// the events they add. A test helper, not a C++ API of the library.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include "tokencache.h"

namespace tctest {

constexpr const char *kEnv = "login.microsoftonline.com";
constexpr const char *kClientId = "my-app";
constexpr const char *kGraph = "https://graph.microsoft.com/.default";
constexpr int64_t kNow = 1700000000;

struct CacheDeleter {
    void operator()(const tc_cache *cache) const { tc_cache_free(cache); }
};
using Cache = std::unique_ptr<const tc_cache, CacheDeleter>;

inline Cache new_cache() {
    const tc_cache *cache = nullptr;
    return tc_cache_new(&cache) == TC_RESULT_OK ? Cache(cache) : Cache();
}

/// Takes a buffer the library returned: its text, and the buffer freed.
inline std::string take(tc_bytes &bytes) {
    std::string text(reinterpret_cast<const char *>(bytes.data), bytes.len);
    tc_bytes_free(&bytes);
    return text;
}

inline std::string last_error() {
    tc_bytes message{nullptr, 0};
    tc_last_error_message(&message);
    return take(message);
}

inline std::string app_event(const std::string &tenant, const std::string &secret,
                             const std::string &scope = kGraph) {
    return std::string("{\"client_id\": \"") + kClientId + "\", \"scope\": [\"" + scope +
           "\"], \"token_endpoint\": \"https://" + kEnv + "/" + tenant +
           "/oauth2/v2.0/token\", \"grant_type\": \"client_credentials\", \"environment\": \"" + kEnv +
           "\", \"response\": {\"access_token\": \"" + secret + "\", \"expires_in\": 3600}}";
}

inline const char *user_event() {
    return "{\"client_id\": \"my-app\", \"scope\": [\"User.Read\"],"
           " \"token_endpoint\": \"https://login.microsoftonline.com/t1/oauth2/v2.0/token\","
           " \"grant_type\": \"authorization_code\", \"environment\": \"login.microsoftonline.com\","
           " \"response\": {\"access_token\": \"user-at\", \"refresh_token\": \"user-rt\", \"expires_in\": 3600,"
           " \"client_info\": \"eyJ1aWQiOiJ1MSIsInV0aWQiOiJ0MSJ9\"}}";
}

/// The typed hot path for an app token, sizing the buffer as a caller would: ask
/// with an empty buffer, then retry with the length reported.
inline tc_result app_token(const tc_cache *cache, const std::string &tenant, std::string &secret,
                           int64_t &expires_on) {
    const char *scopes[] = {kGraph};
    size_t len = 0;
    tc_result r = tc_cache_get_access_token(cache, nullptr, kEnv, kClientId, tenant.c_str(), scopes, 1, nullptr,
                                            nullptr, 0, &len, &expires_on);
    if (r != TC_RESULT_BUFFER_TOO_SMALL) {
        return r;
    }
    std::string buffer(len + 1, '\0');
    r = tc_cache_get_access_token(cache, nullptr, kEnv, kClientId, tenant.c_str(), scopes, 1, nullptr, &buffer[0],
                                  buffer.size(), &len, &expires_on);
    if (r == TC_RESULT_OK) {
        secret.assign(buffer.data(), len);
    }
    return r;
}

inline long env_long(const char *name, long fallback) {
    const char *value = std::getenv(name);
    return value && *value ? std::strtol(value, nullptr, 10) : fallback;
}

}  // namespace tctest
