// Callbacks from C++: captureless lambdas with user_data, re-entering the library.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "tokencache_test.hpp"

using namespace tctest;

namespace {
struct Observer {
    const tc_cache *cache = nullptr;
    std::vector<std::string> seen;
    int saved = 0;
};
}  // namespace

TEST(Callbacks, AfterAccessSavesThePartitionFromInsideTheCallback) {
    Cache cache = new_cache();
    Observer observer;
    observer.cache = cache.get();
    auto before = [](void *user_data, const tc_access_event *event) {
        auto *o = static_cast<Observer *>(user_data);
        o->seen.push_back(std::string("before:") + std::to_string(event->operation));
    };
    auto after = [](void *user_data, const tc_access_event *event) {
        auto *o = static_cast<Observer *>(user_data);
        o->seen.push_back(std::string("after:") + std::to_string(event->operation));
        if (event->operation == TC_OPERATION_ADD && event->has_state_changed && event->partition_key) {
            tc_bytes blob{nullptr, 0};
            // Re-entering the same cache: no lock is held during callbacks.
            if (tc_cache_serialize_partition(o->cache, event->partition_key, &blob) == TC_RESULT_OK) {
                o->saved++;
            }
            tc_bytes_free(&blob);
        }
    };
    ASSERT_EQ(tc_cache_set_access_callbacks(cache.get(), before, after, &observer), TC_RESULT_OK);
    ASSERT_EQ(tc_cache_add_event(cache.get(), user_event(), kNow), TC_RESULT_OK);
    EXPECT_EQ(observer.saved, 1);
    // The nested serialize notifies inside the after callback of the add.
    const std::vector<std::string> want = {"before:1", "after:1", "before:4", "after:4"};
    EXPECT_EQ(observer.seen, want);
    ASSERT_EQ(tc_cache_set_access_callbacks(cache.get(), nullptr, nullptr, nullptr), TC_RESULT_OK);
}

TEST(Callbacks, LogCallbackGetsEvictionMessages) {
    tc_cache_options *options = nullptr;
    ASSERT_EQ(tc_cache_options_new(&options), TC_RESULT_OK);
    ASSERT_EQ(tc_cache_options_set_max_entries(options, 2), TC_RESULT_OK);
    const tc_cache *raw = nullptr;
    ASSERT_EQ(tc_cache_new_with_options(options, &raw), TC_RESULT_OK);
    tc_cache_options_free(options);
    Cache cache(raw);

    static std::atomic<int> evictions{0};
    auto sink = [](void *, tc_log_level level, const char *message, size_t) {
        if (level == TC_LOG_LEVEL_DEBUG && std::string(message).find("evicted") != std::string::npos) {
            evictions++;
        }
        (void)tc_version();  // re-entering the library from the log callback
    };
    ASSERT_EQ(tc_set_log_callback(sink, nullptr, TC_LOG_LEVEL_DEBUG), TC_RESULT_OK);
    for (const char *tenant : {"a", "b", "c"}) {
        ASSERT_EQ(tc_cache_add_event(cache.get(), app_event(tenant, "s").c_str(), kNow), TC_RESULT_OK);
    }
    ASSERT_EQ(tc_set_log_callback(nullptr, nullptr, 0), TC_RESULT_OK);
    EXPECT_GE(evictions.load(), 1);
}
