#include "support/json_lite.hpp"

#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace cacheproxy::e2e {

namespace {

const Json& null_json() {
    static const Json n;
    return n;
}

struct Parser {
    std::string_view s;
    std::size_t i = 0;
    int depth = 0;

    [[noreturn]] void fail(const std::string& what) {
        throw std::runtime_error(what + " at offset " + std::to_string(i));
    }
    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    }
    bool eat(char c) {
        ws();
        if (i < s.size() && s[i] == c) {
            ++i;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!eat(c)) fail(std::string("expected '") + c + "'");
    }
    bool literal(std::string_view word) {
        if (s.substr(i, word.size()) == word) {
            i += word.size();
            return true;
        }
        return false;
    }
    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    unsigned hex4() {
        if (i + 4 > s.size()) fail("short \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s[i++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string str() {
        ws();
        if (i >= s.size() || s[i] != '"') fail("expected a string");
        ++i;
        std::string out;
        while (i < s.size() && s[i] != '"') {
            char c = s[i++];
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i >= s.size()) fail("bad escape");
            char e = s[i++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && s.substr(i, 2) == "\\u") {
                        i += 2;
                        unsigned lo = hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    put_utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
        if (i >= s.size()) fail("unterminated string");
        ++i;
        return out;
    }
    Json value() {
        if (++depth > 64) fail("too deep");
        ws();
        if (i >= s.size()) fail("unexpected end");
        Json v;
        char c = s[i];
        if (c == '{') {
            ++i;
            v.kind = Json::Kind::object;
            if (!eat('}')) {
                do {
                    v.keys.push_back(str());
                    expect(':');
                    v.items.push_back(value());
                } while (eat(','));
                expect('}');
            }
        } else if (c == '[') {
            ++i;
            v.kind = Json::Kind::array;
            if (!eat(']')) {
                do v.items.push_back(value());
                while (eat(','));
                expect(']');
            }
        } else if (c == '"') {
            v.kind = Json::Kind::string;
            v.string = str();
        } else if (literal("true")) {
            v.kind = Json::Kind::boolean;
            v.boolean = true;
        } else if (literal("false")) {
            v.kind = Json::Kind::boolean;
        } else if (literal("null")) {
            v.kind = Json::Kind::null;
        } else {
            std::string num;
            while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '-' || s[i] == '+' ||
                                    s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
                num += s[i++];
            if (num.empty()) fail("unexpected character");
            char* end = nullptr;
            v.kind = Json::Kind::number;
            v.number = std::strtod(num.c_str(), &end);
            if (end != num.c_str() + num.size()) fail("bad number");
            v.string = num;  // the literal text, for exact comparisons
        }
        --depth;
        return v;
    }
};

}  // namespace

const Json& Json::operator[](std::string_view key) const {
    if (kind != Kind::object) return null_json();
    for (std::size_t k = 0; k < keys.size(); ++k)
        if (keys[k] == key) return items[k];
    return null_json();
}

const Json& Json::at(std::size_t i) const {
    if (kind != Kind::array || i >= items.size()) return null_json();
    return items[i];
}

std::optional<Json> parse_json(std::string_view text, std::string* error) {
    Parser p{text};
    try {
        Json v = p.value();
        p.ws();
        if (p.i != text.size()) p.fail("trailing characters");
        return v;
    } catch (const std::exception& e) {
        if (error) *error = e.what();
        return std::nullopt;
    }
}

}  // namespace cacheproxy::e2e
