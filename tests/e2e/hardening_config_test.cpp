/// Issue 11, item 8 (config): `cacheproxy --check` terminates on every input
/// and range-checks every limit. A YAML file that starts with `,` (or a second
/// document that does) used to make yaml-cpp's LoadAll allocate forever; a
/// max_header_bytes of 4 GiB or more passed --check and was cut to 32 bits.
/// Each case: exit status 2 within 5 s, and the message names the file and a
/// line (or the key).

#include "support/fixtures.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

/// A "kB" field of /proc/<pid>/status, or -1.
long long status_kb(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(field + ":", 0) != 0) continue;
        long long v = -1;
        std::istringstream(line.substr(field.size() + 1)) >> v;
        return v;
    }
    return -1;
}

struct CheckRun {
    std::optional<int> exit_code;  ///< nullopt: it had to be killed
    std::string output;            ///< stdout + stderr
    std::string why_killed;
};

/// `cacheproxy --check --config <config>`, given 5 s; killed early if it
/// grows past 1 GiB resident (the runaway allocation must not take the machine).
CheckRun run_check(const TempDir& dir, const std::string& config) {
    CheckRun out;
    Process p({CACHEPROXY_BINARY, "--check", "--config", config}, dir.file("check.log"));
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    for (;;) {
        if (auto code = p.wait_exit(milliseconds(50))) {
            out.exit_code = code;
            break;
        }
        const long long rss = status_kb(p.pid(), "VmRSS");
        if (rss > 1024 * 1024) {
            out.why_killed = "killed at " + std::to_string(rss / 1024) + " MiB resident (allocating without bound)";
            p.kill();
            break;
        }
        if (Clock::now() >= deadline) {
            out.why_killed = "killed: still running 5 s after start";
            p.kill();
            break;
        }
    }
    out.output = p.read_log();
    return out;
}

/// True if `output` holds "<file>:<line>" with a line of 1 or more.
bool names_file_and_line(const std::string& output, const std::string& file) {
    std::size_t at = 0;
    while ((at = output.find(file + ":", at)) != std::string::npos) {
        at += file.size() + 1;
        if (at < output.size() && output[at] >= '1' && output[at] <= '9') return true;
    }
    return false;
}

/// A config the proxy accepts (the harness's defaults), as text.
std::string valid_config_text() { return ProxyConfig("http://127.0.0.1:9").to_yaml(); }

TEST(HardeningConfig, ConfigFileThatIsAComma) {
    TempDir dir("cacheproxy-check");
    const std::string config = dir.write("config.yaml", ",");

    // cacheproxy --check --config config.yaml  (the file: ",")
    CheckRun r = run_check(dir, config);

    // exit 2 within 5 s; the message names the file and a line
    ASSERT_TRUE(r.exit_code) << r.why_killed << "\n" << r.output.substr(0, 2000);
    EXPECT_EQ(*r.exit_code, 2) << r.output;
    EXPECT_TRUE(names_file_and_line(r.output, config)) << r.output;
}

TEST(HardeningConfig, SecondYamlDocumentThatStartsWithAComma) {
    TempDir dir("cacheproxy-check");
    const std::string config = dir.write("config.yaml", valid_config_text() + "---\n,\n");

    // cacheproxy --check --config config.yaml  (a valid config, then "---\n,")
    CheckRun r = run_check(dir, config);

    ASSERT_TRUE(r.exit_code) << r.why_killed << "\n" << r.output.substr(0, 2000);
    EXPECT_EQ(*r.exit_code, 2) << r.output;
    EXPECT_TRUE(names_file_and_line(r.output, config)) << r.output;
}

TEST(HardeningConfig, RulesFileThatStartsWithAComma) {
    TempDir dir("cacheproxy-check");
    const std::string rules = dir.write("rules.yaml", ",\nroutes: []\n");
    const std::string config = dir.write("config.yaml", valid_config_text() + "rules: \"" + rules + "\"\n");

    // cacheproxy --check --config config.yaml  (whose rules file starts with ",")
    CheckRun r = run_check(dir, config);

    // exit 2 within 5 s; the message names the rules file and a line
    ASSERT_TRUE(r.exit_code) << r.why_killed << "\n" << r.output.substr(0, 2000);
    EXPECT_EQ(*r.exit_code, 2) << r.output;
    EXPECT_TRUE(names_file_and_line(r.output, rules)) << r.output;
}

TEST(HardeningConfig, MaxHeaderBytesOf5GiBIsRefused) {
    TempDir dir("cacheproxy-check");
    ProxyConfig cfg("http://127.0.0.1:9");
    cfg.set("limits.max_header_bytes", "5GiB");
    const std::string config = dir.write("config.yaml", cfg.to_yaml());

    // cacheproxy --check --config config.yaml  (limits.max_header_bytes: 5GiB)
    CheckRun r = run_check(dir, config);

    // exit 2; the message names the key
    ASSERT_TRUE(r.exit_code) << r.why_killed << "\n" << r.output.substr(0, 2000);
    EXPECT_EQ(*r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("limits.max_header_bytes"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cacheproxy::e2e
