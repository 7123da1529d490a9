#include "app/shared_tier_start.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace cacheproxy::app {
namespace {

std::string key_file(const std::string& bytes, mode_t mode) {
    static int n = 0;
    const auto path = std::filesystem::temp_directory_path() /
                      ("cacheproxy-key-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::ofstream(path, std::ios::binary) << bytes;
    ::chmod(path.c_str(), mode);
    return path.string();
}

TEST(SharedTierKeyFile, ReadsHexOrRawBytes) {
    cache::IdentityHasher::Key key{};
    const auto hex = key_file(std::string(62, '0') + "ff\n", 0600);
    ASSERT_FALSE(read_identity_key(hex, key));
    EXPECT_EQ(key[31], 0xff);
    EXPECT_EQ(key[0], 0);
    const auto raw = key_file(std::string(32, '\x07'), 0400);
    ASSERT_FALSE(read_identity_key(raw, key));
    EXPECT_EQ(key[5], 7);
    std::remove(hex.c_str());
    std::remove(raw.c_str());
}

TEST(SharedTierKeyFile, RefusesAFileOthersCanReadOrOfTheWrongSize) {
    cache::IdentityHasher::Key key{};
    const auto open = key_file(std::string(64, 'a'), 0644);
    const auto error = read_identity_key(open, key);
    ASSERT_TRUE(error);
    EXPECT_NE(error->find("readable by others"), std::string::npos) << *error;
    const auto short_one = key_file(std::string(40, 'a'), 0600);
    EXPECT_TRUE(read_identity_key(short_one, key));
    const auto not_hex = key_file(std::string(63, 'a') + "z", 0600);
    EXPECT_TRUE(read_identity_key(not_hex, key));
    EXPECT_TRUE(read_identity_key("/nonexistent/identity.key", key));
    for (const auto& p : {open, short_one, not_hex}) std::remove(p.c_str());
}

}  // namespace
}  // namespace cacheproxy::app
