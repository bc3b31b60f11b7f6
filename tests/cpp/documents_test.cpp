// Documents: every shared vector through the ABI, and partition blobs.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tokencache_test.hpp"

using namespace tctest;
namespace fs = std::filesystem;

static std::string read_file(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

static tc_result load(const tc_cache *cache, const std::string &text) {
    return tc_cache_deserialize(cache, reinterpret_cast<const uint8_t *>(text.data()), text.size());
}

TEST(Documents, EveryVectorRoundTrips) {
    const char *dir = std::getenv("TOKENCACHE_VECTORS");
    ASSERT_NE(dir, nullptr) << "set TOKENCACHE_VECTORS";
    int caches = 0;
    for (const auto &entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        const bool is_json = name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
        const bool is_bin = name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0;
        if ((!is_json && !is_bin) || name == "manifest.json" || name.find(".events.json") != std::string::npos) {
            continue;
        }
        const std::string text = read_file(entry.path());
        Cache cache = new_cache();
        if (name == "dotnet__cachecompat_dotnet_dictionary.bin" || name == "msaljs__cacheStore.json") {
            EXPECT_EQ(load(cache.get(), text), TC_RESULT_NOT_A_CACHE) << name;
            continue;
        }
        ASSERT_EQ(load(cache.get(), text), TC_RESULT_OK) << name << ": " << last_error();
        tc_bytes out{nullptr, 0};
        ASSERT_EQ(tc_cache_serialize(cache.get(), &out), TC_RESULT_OK);
        const std::string once = take(out);
        if (name.rfind("msal_python_", 0) == 0) {
            EXPECT_EQ(once, text) << name;
        }
        Cache again = new_cache();
        ASSERT_EQ(load(again.get(), once), TC_RESULT_OK) << name;
        ASSERT_EQ(tc_cache_serialize(again.get(), &out), TC_RESULT_OK);
        EXPECT_EQ(take(out), once) << name;
        caches++;
    }
    EXPECT_GE(caches, 29);
}

TEST(Documents, PartitionBlobsMoveBetweenCaches) {
    Cache from = new_cache();
    ASSERT_EQ(tc_cache_add_event(from.get(), user_event(), kNow), TC_RESULT_OK);
    ASSERT_EQ(tc_cache_add_event(from.get(), app_event("contoso", "s").c_str(), kNow), TC_RESULT_OK);
    tc_bytes blob{nullptr, 0};
    ASSERT_EQ(tc_cache_serialize_partition(from.get(), "u1.t1", &blob), TC_RESULT_OK);
    const std::string text = take(blob);
    Cache to = new_cache();
    ASSERT_EQ(tc_cache_deserialize_partition(to.get(), "u1.t1", reinterpret_cast<const uint8_t *>(text.data()),
                                             text.size()),
              TC_RESULT_OK);
    size_t len = 0;
    ASSERT_EQ(tc_cache_len(to.get(), &len), TC_RESULT_OK);
    EXPECT_EQ(len, 4u);  // access token, refresh token, account, app metadata
    int64_t expiry = -1;
    ASSERT_EQ(tc_cache_suggested_expiry(from.get(), "my-app_contoso_AppTokenCache", kNow, &expiry), TC_RESULT_OK);
    EXPECT_EQ(expiry, kNow + 3600);
}
