// The provider from C++: a scope that loads a partition and saves it when it ends (the
// way a request handler would use it), saves only of what changed, and many threads
// on one provider over a tiered store and over SQLite.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "tokencache_test.hpp"

namespace {

using namespace tctest;

struct StoreDeleter {
    void operator()(const tc_store *store) const { tc_store_free(store); }
};
using Store = std::unique_ptr<const tc_store, StoreDeleter>;

struct ProviderDeleter {
    void operator()(const tc_provider *provider) const { tc_provider_free(provider); }
};
using Provider = std::unique_ptr<const tc_provider, ProviderDeleter>;

// One partition for the length of a scope: loaded on construction, saved (only if
// changed) by save() or, failing that, on destruction.
class PartitionScope {
  public:
    PartitionScope(const tc_provider *provider, const std::string &key) : provider_(provider) {
        result_ = tc_provider_load(provider, key.c_str(), &cache_);
    }
    PartitionScope(const PartitionScope &) = delete;
    PartitionScope &operator=(const PartitionScope &) = delete;
    ~PartitionScope() {
        save();
        tc_cache_free(cache_);  // a save that failed left it ours (NULL after a success)
    }

    tc_result load_result() const { return result_; }
    const tc_cache *cache() const { return cache_; }

    tc_result save() {
        if (!cache_) return TC_RESULT_OK;
        tc_result r = tc_provider_save(provider_, cache_);
        if (r == TC_RESULT_OK) cache_ = nullptr;  // taken over only on success
        return r;
    }

  private:
    const tc_provider *provider_;
    const tc_cache *cache_ = nullptr;
    tc_result result_;
};

Store memory_store() {
    const tc_store *store = nullptr;
    EXPECT_EQ(tc_store_memory_new(0, &store), TC_RESULT_OK);
    return Store(store);
}

Provider provider_over(const tc_store *store) {
    const tc_provider *provider = nullptr;
    EXPECT_EQ(tc_provider_new(store, nullptr, &provider), TC_RESULT_OK);
    return Provider(provider);
}

tc_provider_stats stats_of(const tc_provider *provider) {
    tc_provider_stats stats{};
    EXPECT_EQ(tc_provider_get_stats(provider, &stats), TC_RESULT_OK);
    return stats;
}

TEST(Provider, AScopeSavesWhatChangedAndOnlyThat) {
    Store store = memory_store();
    Provider provider = provider_over(store.get());
    {
        PartitionScope scope(provider.get(), "tenant-a");
        ASSERT_EQ(scope.load_result(), TC_RESULT_OK);
        ASSERT_EQ(tc_cache_add_event(scope.cache(), app_event("tenant-a", "at-a").c_str(), kNow), TC_RESULT_OK);
    }
    EXPECT_EQ(stats_of(provider.get()).writes, 1u);
    for (int i = 0; i < 5; i++) {
        PartitionScope scope(provider.get(), "tenant-a");
        std::string secret;
        int64_t expires_on = 0;
        ASSERT_EQ(app_token(scope.cache(), "tenant-a", secret, expires_on), TC_RESULT_OK) << last_error();
        EXPECT_EQ(secret, "at-a");
        EXPECT_EQ(expires_on, kNow + 3600);
    }
    tc_provider_stats stats = stats_of(provider.get());
    EXPECT_EQ(stats.writes, 1u) << "reads must not write";
    EXPECT_EQ(stats.hits, 5u);
    EXPECT_EQ(stats.misses, 1u);
}

TEST(Provider, ThreadsShareOneProviderOverATieredStore) {
    Store l2 = memory_store();
    const tc_store *raw = nullptr;
    ASSERT_EQ(tc_store_tiered_new(l2.get(), nullptr, &raw), TC_RESULT_OK);
    Store tiered(raw);
    Provider provider = provider_over(tiered.get());
    const long rounds = env_long("TC_TEST_ROUNDS", 200);
    const int threads = 8;
    std::atomic<long> failures{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            const std::string tenant = "tenant-" + std::to_string(t);  // one partition per thread
            for (long i = 0; i < rounds; i++) {
                PartitionScope scope(provider.get(), tenant);
                if (scope.load_result() != TC_RESULT_OK) {
                    failures++;
                    continue;
                }
                const std::string secret = "at-" + std::to_string(t) + "-" + std::to_string(i);
                if (tc_cache_add_event(scope.cache(), app_event(tenant, secret).c_str(), kNow) != TC_RESULT_OK ||
                    scope.save() != TC_RESULT_OK) {
                    failures++;
                }
            }
        });
    }
    for (auto &thread : pool) thread.join();
    EXPECT_EQ(failures.load(), 0);
    for (int t = 0; t < threads; t++) {
        PartitionScope scope(provider.get(), "tenant-" + std::to_string(t));
        std::string secret;
        int64_t expires_on = 0;
        ASSERT_EQ(app_token(scope.cache(), "tenant-" + std::to_string(t), secret, expires_on), TC_RESULT_OK);
        EXPECT_EQ(secret, "at-" + std::to_string(t) + "-" + std::to_string(rounds - 1));
    }
    tc_store_stats stats{};
    ASSERT_EQ(tc_store_get_stats(tiered.get(), &stats), TC_RESULT_OK);
    EXPECT_EQ(stats.layers, uint32_t(TC_STORE_LAYER_TIERED | TC_STORE_LAYER_MEMORY));
    EXPECT_EQ(stats.l1_hits, uint64_t(threads * rounds));  // every load but each thread's first, plus the checks
    EXPECT_EQ(stats.l2_errors, 0u);
    EXPECT_EQ(stats.memory_entries, uint64_t(threads));
    EXPECT_EQ(stats_of(provider.get()).writes, uint64_t(threads * rounds));
}

TEST(Provider, ThreadsShareOneSqliteFile) {
    char dir[] = "/tmp/tokencache-cpp-sqlite-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/cache.db";
    const long rounds = env_long("TC_TEST_ROUNDS", 200) / 4;
    std::vector<std::thread> pool;
    std::atomic<long> failures{0};
    for (int t = 0; t < 4; t++) {
        pool.emplace_back([&, t] {
            // A store per thread: as separate processes would open the file.
            const tc_store *raw = nullptr;
            if (tc_store_sqlite_open(path.c_str(), 5000, 0, &raw) != TC_RESULT_OK) {
                failures++;
                return;
            }
            Store store(raw);
            Provider provider = provider_over(store.get());
            const std::string tenant = "tenant-" + std::to_string(t);
            for (long i = 0; i < rounds; i++) {
                PartitionScope scope(provider.get(), tenant);
                const std::string secret = "at-" + std::to_string(i);
                if (scope.load_result() != TC_RESULT_OK ||
                    tc_cache_add_event(scope.cache(), app_event(tenant, secret).c_str(), kNow) != TC_RESULT_OK ||
                    scope.save() != TC_RESULT_OK) {
                    failures++;
                }
            }
        });
    }
    for (auto &thread : pool) thread.join();
    EXPECT_EQ(failures.load(), 0) << last_error();
    const tc_store *raw = nullptr;
    ASSERT_EQ(tc_store_sqlite_open(path.c_str(), 0, 0, &raw), TC_RESULT_OK);
    Store store(raw);
    Provider provider = provider_over(store.get());
    for (int t = 0; t < 4; t++) {
        PartitionScope scope(provider.get(), "tenant-" + std::to_string(t));
        std::string secret;
        int64_t expires_on = 0;
        ASSERT_EQ(app_token(scope.cache(), "tenant-" + std::to_string(t), secret, expires_on), TC_RESULT_OK);
        EXPECT_EQ(secret, "at-" + std::to_string(rounds - 1));
    }
    EXPECT_EQ(std::system((std::string("rm -rf ") + dir).c_str()), 0);
}

}  // namespace
