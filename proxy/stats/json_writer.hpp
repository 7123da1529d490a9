#pragma once
/// A small JSON writer for the admin answers: objects, arrays, strings with
/// proper escaping, integers and finite doubles. Written by hand (no library);
/// it does no validation beyond placing commas and colons.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::stats {

/// Appends `s` as a JSON string literal (quotes included) to `out`. Escapes
/// '"', '\\', every control character, and '<', '>', '&' (so the text is also
/// safe inside HTML); other bytes are copied as they are.
void append_json_string(std::string& out, std::string_view s);

class JsonWriter {
public:
    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    /// The next member's name (inside an object).
    JsonWriter& key(std::string_view k);

    JsonWriter& value(std::string_view v);
    JsonWriter& value(const char* v) { return value(std::string_view(v)); }
    JsonWriter& value(bool v);
    JsonWriter& value(unsigned long long v);
    JsonWriter& value(long long v);
    JsonWriter& value(unsigned long v) { return value(static_cast<unsigned long long>(v)); }
    JsonWriter& value(long v) { return value(static_cast<long long>(v)); }
    JsonWriter& value(unsigned v) { return value(static_cast<unsigned long long>(v)); }
    JsonWriter& value(int v) { return value(static_cast<long long>(v)); }
    /// A finite double, shortest form, rounded to 6 decimals; NaN and infinities become null.
    JsonWriter& value(double v);
    JsonWriter& null();

    /// key(k).value(v)
    template <typename T>
    JsonWriter& member(std::string_view k, const T& v) {
        key(k);
        return value(v);
    }

    const std::string& str() const { return out_; }
    std::string take() { return std::move(out_); }

private:
    void before_value();
    std::string out_;
    std::vector<bool> has_members_;  ///< per open container: something was written
    bool after_key_ = false;
};

}  // namespace cacheproxy::stats
