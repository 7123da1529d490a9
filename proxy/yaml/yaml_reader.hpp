#pragma once
/// Strict, typed reading of YAML mappings, shared by the config and rules loaders.
/// Every key asked for is type-checked; every key never asked for is an error;
/// every error carries the file, the 1-based line and column and the dotted key
/// ("upstream.connect_timeout", "routes[1].ttl"). Errors are recorded, not thrown;
/// the loaders still catch whatever yaml-cpp might throw.

#include "yaml/config_error.hpp"

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::config {

/// The file being read and the first error met in it (later ones are dropped).
struct YamlSource {
    std::string file;
    std::optional<ConfigError> error;

    /// Records an error at `mark` (yaml-cpp's 0-based; a null mark gives line 0), unless one is recorded.
    void fail(const YAML::Mark& mark, std::string key, std::string message);
};

/// Reads and parses `path` into `out`. Returns "cannot open file" (line 0) or
/// the YAML syntax error with its position. Never throws.
std::optional<ConfigError> load_yaml_file(const std::string& path, YAML::Node& out);

/// Where the value at `key` ("admin.token", "routes[1].statuses[0]") is written in `root`:
/// the value itself, else the deepest part of the path that is present; a null mark if none.
YAML::Mark locate(const YAML::Node& root, std::string_view key);

/// One mapping of a document, read strictly. Keys absent from the file leave
/// the target untouched (so struct defaults stand); a present key with the wrong
/// type records an error in the YamlSource. Call finish() once everything is read.
class YamlReader {
public:
    /// Reads `node` (a mapping; null or absent = empty) found at `path` ("" = document root);
    /// `where` is used for errors when the node itself has no position.
    YamlReader(YamlSource& source, const YAML::Node& node, std::string path,
               YAML::Mark where = YAML::Mark::null_mark());

    /// Whether `key` is present (with any value, even null).
    bool has(std::string_view key) const;
    /// The dotted path of `key` in this mapping, e.g. "upstream" + "url" -> "upstream.url".
    std::string path_of(std::string_view key) const;

    /// A string scalar (quoted or not); null is refused.
    void read_string(std::string_view key, std::string& out);
    /// `true` or `false`, unquoted.
    void read_bool(std::string_view key, bool& out);
    /// A non-negative decimal integer, unquoted, that fits the target.
    void read_unsigned(std::string_view key, unsigned& out);
    /// A non-negative decimal integer, unquoted, that fits the target.
    void read_unsigned(std::string_view key, std::size_t& out);
    /// A duration as parse_duration() reads it ("15s").
    void read_duration(std::string_view key, Duration& out);
    /// A size as parse_size() reads it ("10MiB").
    void read_size(std::string_view key, std::size_t& out);
    /// "HOST:PORT" as parse_host_port() reads it.
    void read_host_port(std::string_view key, HostPort& out);
    /// A list of strings ("[a, b]" or block style); null or [] = empty.
    void read_string_list(std::string_view key, std::vector<std::string>& out);
    /// A list of non-negative integers.
    void read_unsigned_list(std::string_view key, std::vector<unsigned>& out);

    /// The mapping under `key` (absent or null = empty mapping).
    YamlReader child(std::string_view key);
    /// The list of mappings under `key` (absent or null = none), as "key[0]", "key[1]"...
    std::vector<YamlReader> children(std::string_view key);

    /// Records "required key missing" for `key` if it is absent.
    void require(std::string_view key);
    /// Records `message` for `key`, at its value if present, else at this mapping.
    void fail(std::string_view key, std::string message);
    /// Records "unknown key" for the first key that no read_*, child, children, require or fail call named.
    void finish();

private:
    struct Entry {
        std::string name;
        YAML::Node key;
        YAML::Node value;
        bool used = false;
    };

    /// The entry for `key`, marked as used; nullptr if absent.
    Entry* find(std::string_view key);
    /// The scalar text of `node`, or nullopt after recording "expected `expected`, got ...".
    /// `plain_only` refuses quoted scalars (for numbers and booleans).
    std::optional<std::string> scalar_of(const YAML::Node& node, const YAML::Mark& mark, const std::string& key,
                                         std::string_view expected, bool plain_only);
    /// `node` as a non-negative decimal integer no larger than `max`, or nullopt after recording why not.
    std::optional<unsigned long long> unsigned_of(const YAML::Node& node, const YAML::Mark& mark,
                                                  const std::string& key, unsigned long long max);
    /// Calls read_element(node, mark, "key[i]") for each element of the list under `key`.
    template <typename ReadElement>
    void read_list(std::string_view key, std::string_view expected, ReadElement&& read_element);
    /// Where to point for an error about `entry`'s value.
    static YAML::Mark value_mark(const Entry& entry);

    YamlSource* source_;
    std::string path_;
    YAML::Mark mark_;
    std::vector<Entry> entries_;
};

}  // namespace cacheproxy::config
