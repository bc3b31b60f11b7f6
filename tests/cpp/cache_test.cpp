// Adding, looking up, modifying; errors as codes with messages.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "tokencache_test.hpp"

using namespace tctest;

TEST(Library, VersionAndResultNames) {
    const std::string version = tc_version();
    EXPECT_NE(version.find('.'), std::string::npos) << version;
    EXPECT_STREQ(tc_result_describe(TC_RESULT_OK), "ok");
    EXPECT_STREQ(tc_result_describe(TC_RESULT_NOT_A_CACHE), "the JSON is not a unified token cache");
    EXPECT_STREQ(tc_result_describe(12345), "unknown result");
}

TEST(Cache, AddThenLookUpByTheTypedPath) {
    Cache cache = new_cache();
    ASSERT_TRUE(cache);
    ASSERT_EQ(tc_cache_add_event(cache.get(), app_event("contoso", "at-contoso").c_str(), kNow), TC_RESULT_OK);
    std::string secret;
    int64_t expires_on = 0;
    ASSERT_EQ(app_token(cache.get(), "contoso", secret, expires_on), TC_RESULT_OK);
    EXPECT_EQ(secret, "at-contoso");
    EXPECT_EQ(expires_on, kNow + 3600);
    EXPECT_EQ(app_token(cache.get(), "fabrikam", secret, expires_on), TC_RESULT_NOT_FOUND);
}

TEST(Cache, SearchReturnsAJsonArray) {
    Cache cache = new_cache();
    ASSERT_EQ(tc_cache_add_event(cache.get(), user_event(), kNow), TC_RESULT_OK);
    tc_bytes found{nullptr, 0};
    const char *query = "{\"home_account_id\": \"u1.t1\"}";
    ASSERT_EQ(tc_cache_search(cache.get(), TC_CREDENTIAL_TYPE_REFRESH_TOKEN, nullptr, 0, query, kNow, &found),
              TC_RESULT_OK);
    std::string json = take(found);
    EXPECT_EQ(json.front(), '[');
    EXPECT_NE(json.find("\"secret\":\"user-rt\""), std::string::npos);
    EXPECT_EQ(found.data, nullptr) << "take() freed and reset it";
}

TEST(Cache, UpdateAndRemoveARefreshToken) {
    Cache cache = new_cache();
    ASSERT_EQ(tc_cache_add_event(cache.get(), user_event(), kNow), TC_RESULT_OK);
    tc_bytes found{nullptr, 0};
    ASSERT_EQ(tc_cache_search(cache.get(), TC_CREDENTIAL_TYPE_REFRESH_TOKEN, nullptr, 0, nullptr, kNow, &found),
              TC_RESULT_OK);
    std::string rt = take(found);
    rt = rt.substr(1, rt.size() - 2);  // the one object of the array
    ASSERT_EQ(tc_cache_update_rt(cache.get(), rt.c_str(), "rt-2", kNow), TC_RESULT_OK);
    ASSERT_EQ(tc_cache_search(cache.get(), TC_CREDENTIAL_TYPE_REFRESH_TOKEN, nullptr, 0, nullptr, kNow, &found),
              TC_RESULT_OK);
    std::string updated = take(found);
    EXPECT_NE(updated.find("rt-2"), std::string::npos);
    updated = updated.substr(1, updated.size() - 2);
    ASSERT_EQ(tc_cache_remove_rt(cache.get(), updated.c_str()), TC_RESULT_OK);
    ASSERT_EQ(tc_cache_search(cache.get(), TC_CREDENTIAL_TYPE_REFRESH_TOKEN, nullptr, 0, nullptr, kNow, &found),
              TC_RESULT_OK);
    EXPECT_EQ(take(found), "[]");
}

TEST(Errors, CodesComeWithMessages) {
    Cache cache = new_cache();
    EXPECT_EQ(tc_cache_add_event(cache.get(), "{\"client_id\": ", kNow), TC_RESULT_INVALID_JSON);
    EXPECT_NE(last_error().find("line 1"), std::string::npos);
    EXPECT_EQ(tc_cache_add_event(nullptr, "{}", kNow), TC_RESULT_NULL_PARAMETER);
    EXPECT_NE(last_error().find("`cache`"), std::string::npos);
    EXPECT_EQ(tc_cache_search(cache.get(), 42, nullptr, 0, nullptr, kNow, nullptr), TC_RESULT_INVALID_ENUM);
    const char bad[] = {'{', static_cast<char>(0xff), '}', 0};
    EXPECT_EQ(tc_cache_add_event(cache.get(), bad, kNow), TC_RESULT_INVALID_UTF8);
    const char *doc = "[]";
    EXPECT_EQ(tc_cache_deserialize(cache.get(), reinterpret_cast<const uint8_t *>(doc), 2), TC_RESULT_NOT_A_CACHE);
}

TEST(Errors, TooSmallBufferReportsTheLength) {
    Cache cache = new_cache();
    ASSERT_EQ(tc_cache_add_event(cache.get(), app_event("t", "0123456789").c_str(), kNow), TC_RESULT_OK);
    const char *scopes[] = {kGraph};
    char buffer[4] = {'#', '#', '#', '#'};
    size_t len = 0;
    int64_t expires_on = -1;
    EXPECT_EQ(tc_cache_get_access_token(cache.get(), nullptr, kEnv, kClientId, "t", scopes, 1, nullptr, buffer,
                                        sizeof buffer, &len, &expires_on),
              TC_RESULT_BUFFER_TOO_SMALL);
    EXPECT_EQ(len, 10u);
    EXPECT_EQ(expires_on, -1);
    EXPECT_EQ(buffer[0], '#');
}
