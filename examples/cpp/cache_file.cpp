// Load an MSAL token cache file, add a token, look it up, save the file, from C++:
// the C API behind small RAII owners, failures as exceptions.
//
//   cmake -S . -B build -DCMAKE_PREFIX_PATH=<prefix> && cmake --build build
//   ./build/cache_file msal_token_cache.json
#include <tokencache.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

// Throws with the library's message when a call fails.
void check(tc_result result, const char *what) {
    if (result == TC_RESULT_OK) {
        return;
    }
    tc_bytes message{nullptr, 0};
    tc_last_error_message(&message);
    std::string text = std::string(what) + ": " + reinterpret_cast<const char *>(message.data);
    tc_bytes_free(&message);
    throw std::runtime_error(text);
}

// A tc_bytes owned by C++.
struct Bytes {
    tc_bytes raw{nullptr, 0};
    ~Bytes() { tc_bytes_free(&raw); }
    std::string str() const { return std::string(reinterpret_cast<const char *>(raw.data), raw.len); }
};

struct CacheDeleter {
    void operator()(const tc_cache *cache) const { tc_cache_free(cache); }
};

class TokenCache {
public:
    TokenCache() {
        const tc_cache *raw = nullptr;
        check(tc_cache_new(&raw), "create");
        cache_.reset(raw);
    }
    void load(const std::string &text) {
        check(tc_cache_deserialize(cache_.get(), reinterpret_cast<const uint8_t *>(text.data()), text.size()), "load");
    }
    void add(const std::string &event_json) { check(tc_cache_add_event(cache_.get(), event_json.c_str(), TC_NOW), "add"); }
    // The app token of `tenant` for `scope`, or "" when none is cached.
    std::string app_token(const std::string &client_id, const std::string &tenant, const char *scope) const {
        const char *scopes[] = {scope};
        std::string secret(4096, '\0');
        size_t len = 0;
        int64_t expires_on = 0;
        tc_result r = tc_cache_get_access_token(cache_.get(), nullptr, "login.microsoftonline.com", client_id.c_str(),
                                                tenant.c_str(), scopes, 1, nullptr, &secret[0], secret.size(), &len,
                                                &expires_on);
        if (r == TC_RESULT_NOT_FOUND) {
            return "";
        }
        check(r, "look up");
        secret.resize(len);
        return secret;
    }
    bool changed() const {
        bool flag = false;
        check(tc_cache_has_state_changed(cache_.get(), &flag), "changed");
        return flag;
    }
    std::string serialize() const {
        Bytes document;
        check(tc_cache_serialize(cache_.get(), &document.raw), "serialize");
        return document.str();
    }

private:
    std::unique_ptr<const tc_cache, CacheDeleter> cache_;
};

}  // namespace

int main(int argc, char **argv) {
    const std::string path = argc > 1 ? argv[1] : "msal_token_cache.json";
    try {
        TokenCache cache;
        std::ifstream in(path, std::ios::binary);
        if (in) {
            cache.load(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
        }
        cache.add(R"({"client_id": "my-daemon", "scope": ["https://graph.microsoft.com/.default"],
                      "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
                      "grant_type": "client_credentials",
                      "response": {"access_token": "example-access-token", "expires_in": 3600}})");
        const std::string token = cache.app_token("my-daemon", "contoso", "https://graph.microsoft.com/.default");
        std::cout << "access token: " << token.size() << " bytes\n";
        if (cache.changed()) {
            const std::string tmp = path + ".tmp";
            std::ofstream(tmp, std::ios::binary) << cache.serialize();
            if (std::rename(tmp.c_str(), path.c_str()) != 0) {
                throw std::runtime_error("cannot replace " + path);
            }
            std::cout << "saved " << path << "\n";
        }
        return token.empty() ? 1 : 0;
    } catch (const std::exception &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}
