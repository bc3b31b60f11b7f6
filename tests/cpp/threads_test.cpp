// Eight std::threads share one cache.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tokencache_test.hpp"

using namespace tctest;

TEST(Threads, EightThreadsShareOneCache) {
    Cache cache = new_cache();
    const long rounds = env_long("TC_TEST_ROUNDS", 300);
    std::atomic<long> failures{0};
    std::vector<std::thread> threads;
    for (int id = 0; id < 8; id++) {
        threads.emplace_back([&, id] {
            for (long i = 0; i < rounds; i++) {
                const std::string tenant = "t" + std::to_string(id) + "-" + std::to_string(i % 20);
                const std::string secret = "s-" + tenant;
                if (tc_cache_add_event(cache.get(), app_event(tenant, secret).c_str(), kNow) != TC_RESULT_OK) {
                    failures++;
                }
                std::string got;
                int64_t expires_on = 0;
                if (app_token(cache.get(), tenant, got, expires_on) != TC_RESULT_OK || got != secret) {
                    failures++;
                }
                if (i % 20 == 0) {
                    tc_bytes doc{nullptr, 0};
                    if (tc_cache_serialize(cache.get(), &doc) != TC_RESULT_OK) {
                        failures++;
                    }
                    tc_bytes_free(&doc);
                }
            }
        });
    }
    for (auto &t : threads) {
        t.join();
    }
    EXPECT_EQ(failures.load(), 0);
    size_t len = 0;
    ASSERT_EQ(tc_cache_len(cache.get(), &len), TC_RESULT_OK);
    EXPECT_EQ(len, static_cast<size_t>(8 * std::min(rounds, 20L) + 1));
}
