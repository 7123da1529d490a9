/// The config and rules loaders (proxy/config/config.hpp, yaml_reader.hpp,
/// rules/rules_loader.hpp) and the value forms they read (config/units.hpp).
///
/// The loaders read files only, so the input is written to a file in a
/// private temporary folder and read both as a config file (load_config) and
/// as a rules file (load_rules). Beside it sit `trading.yaml` (a copy of the
/// shipped rules) and `self.yaml` (the input again), so a config naming
/// `rules: trading.yaml` or `rules: self.yaml` also reaches the rules loader
/// through load_config. Asserted:
///  - nothing throws out of a loader (both say "never throws");
///  - loading is deterministic: the same error text, or the same describe();
///  - an error names a file, and its line and column are within that file
///    (1-based, 0 only for "no position");
///  - an accepted config validates (validate() finds nothing) and describes itself;
///  - accepted rules are sound: every route keys on the identity or says
///    `shared`, its path is an exact one (starts with '/', no '?', '#', '%'),
///    the route matcher finds it by its own path, and every trigger
///    invalidates only routes that exist;
///  - units: a duration, size, HOST:PORT or URL that parses reads back the
///    same from its formatted form (for the whole input and for every
///    "key: value" line's value).

#include "cache/route_matcher.hpp"
#include "config/config.hpp"
#include "yaml/units.hpp"
#include "fuzz_common.hpp"
#include "rules/rules_loader.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

using namespace cacheproxy;
namespace fs = std::filesystem;

namespace {

struct Files {
    std::string dir;
    std::string input;
    std::string self;
};

const Files& files() {
    static const Files* f = [] {
        auto* f = new Files;
        std::string tmpl = (fs::temp_directory_path() / "cacheproxy-fuzz-config-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) {
            std::perror("mkdtemp");
            std::abort();
        }
        f->dir = tmpl;
        f->input = f->dir + "/input.yaml";
        f->self = f->dir + "/self.yaml";
        fs::copy_file(std::string(CACHEPROXY_SOURCE_DIR) + "/rules/trading.yaml", f->dir + "/trading.yaml");
        std::atexit([] {
            std::error_code ec;
            fs::remove_all(files().dir, ec);
        });
        return f;
    }();
    return *f;
}

void write_file(const std::string& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) std::abort();
}

std::size_t count_lines(std::string_view s) {
    std::size_t n = 1;
    for (char c : s)
        if (c == '\n') ++n;
    return n;
}

/// The error's position is inside the file it names.
void check_error(const config::ConfigError& e, std::string_view input, std::string_view where) {
    FUZZ_CHECK(!e.file.empty(), where);
    FUZZ_CHECK(e.line >= 0 && e.column >= 0, e.to_string());
    FUZZ_CHECK(e.to_string().starts_with(e.file), e.to_string());
    FUZZ_CHECK(!e.message.empty(), e.to_string());
    if (e.file == files().input || e.file == files().self) {
        FUZZ_CHECK(static_cast<std::size_t>(e.line) <= count_lines(input) + 1, e.to_string());
    }
}

void check_rules(const rules::RuleSet& rs, std::string_view input) {
    const cache::RouteMatcher matcher(rs);
    for (const auto& r : rs.routes) {
        FUZZ_CHECK(r.key.identity || r.shared, r.name);
        FUZZ_CHECK(!r.path.empty() && r.path.front() == '/', r.path);
        FUZZ_CHECK(r.path.find_first_of("?#%") == std::string::npos, r.path);
        const auto* m = matcher.match(r.method, r.path);
        FUZZ_CHECK(m && m->path == r.path && m->method == r.method, r.path);
    }
    for (const auto& t : rs.triggers) {
        for (const auto& name : t.invalidate) {
            bool found = false;
            for (const auto& r : rs.routes) found = found || r.name == name;
            FUZZ_CHECK(found, name);
        }
    }
}

void check_units(std::string_view text) {
    if (text.size() > 64) return;
    if (const auto d = config::parse_duration(text)) {
        const auto s = config::format_duration(*d);
        FUZZ_CHECK(config::parse_duration(s) == d, text);
    }
    if (const auto n = config::parse_size(text)) {
        const auto s = config::format_size(*n);
        FUZZ_CHECK(config::parse_size(s) == n, text);
    }
    config::HostPort hp;
    hp.host = "unset";
    if (!config::parse_host_port(text, hp)) {
        config::HostPort again;
        FUZZ_CHECK(!config::parse_host_port(config::format_host_port(hp), again), text);
        FUZZ_CHECK(again.host == hp.host && again.port == hp.port, text);
    } else {
        FUZZ_CHECK(hp.host == "unset", text);  // refused: left alone
    }
    config::HostPort url;
    if (!config::parse_http_url(text, url)) {
        FUZZ_CHECK(url.port >= 1, text);
        config::HostPort again;
        const std::string spelled = "http://" + config::format_host_port(url);
        FUZZ_CHECK(!config::parse_http_url(spelled, again), spelled);
        FUZZ_CHECK(again.host == url.host && again.port == url.port, spelled);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Files& f = files();
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    write_file(f.input, in);
    write_file(f.self, in);

    try {
        rules::RuleSet rs1, rs2;
        const auto e1 = rules::load_rules(f.input, rs1);
        const auto e2 = rules::load_rules(f.input, rs2);
        FUZZ_CHECK(e1.has_value() == e2.has_value());
        if (e1) {
            FUZZ_CHECK(e1->to_string() == e2->to_string(), e1->to_string());
            check_error(*e1, in, "rules");
        } else {
            check_rules(rs1, in);
        }

        config::Config c1, c2;
        const auto e3 = config::load_config(f.input, c1);
        const auto e4 = config::load_config(f.input, c2);
        FUZZ_CHECK(e3.has_value() == e4.has_value());
        if (e3) {
            FUZZ_CHECK(e3->to_string() == e4->to_string(), e3->to_string());
            check_error(*e3, in, "config");
        } else {
            FUZZ_CHECK(c1.source_path == f.input);
            const auto v = config::validate(c1);
            FUZZ_CHECK(!v, v ? v->to_string() : std::string());
            const std::string d = config::describe(c1);
            FUZZ_CHECK(!d.empty());
            FUZZ_CHECK(d == config::describe(c2));
            check_rules(c1.rules, in);
        }
    } catch (const std::exception& e) {
        fuzz::fail(__FILE__, __LINE__, "a loader threw", e.what());
    } catch (...) {
        fuzz::fail(__FILE__, __LINE__, "a loader threw something that is not a std::exception");
    }

    check_units(in);
    std::string_view rest = in;
    while (!rest.empty()) {
        const auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        const auto colon = line.find(": ");
        if (colon == std::string_view::npos) continue;
        std::string_view value = line.substr(colon + 2);
        const auto hash = value.find(" #");
        value = value.substr(0, hash);
        while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        check_units(value);
    }
    return 0;
}
