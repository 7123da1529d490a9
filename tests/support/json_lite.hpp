#pragma once
/// A minimal JSON reader for what the simulator answers (stats, /echo). Not a
/// general library: no streaming, numbers as double, enough for assertions.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::e2e {

/// One JSON value. Objects keep their keys in document order.
struct Json {
    enum class Kind { null, boolean, number, string, array, object };
    Kind kind = Kind::null;
    bool boolean = false;
    double number = 0;
    std::string string;
    std::vector<Json> items;          ///< array elements, or object values
    std::vector<std::string> keys;    ///< object keys (parallel to items)

    bool is_null() const { return kind == Kind::null; }
    /// Member `key` of an object; a null value if absent or not an object.
    const Json& operator[](std::string_view key) const;
    /// Element i of an array; a null value if out of range.
    const Json& at(std::size_t i) const;
    std::size_t size() const { return items.size(); }
    /// The number as an integer (0 if not a number).
    long long as_int() const { return kind == Kind::number ? static_cast<long long>(number) : 0; }
    const std::string& as_string() const { return string; }
};

/// Parses a whole document; std::nullopt (and *error) if it is not valid JSON.
std::optional<Json> parse_json(std::string_view text, std::string* error = nullptr);

}  // namespace cacheproxy::e2e
