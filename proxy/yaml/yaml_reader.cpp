#include "yaml/yaml_reader.hpp"

#include "yaml/units.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace cacheproxy::config {
namespace {

int one_based(int zero_based) { return zero_based >= 0 ? zero_based + 1 : 0; }

/// What a node holds, for "expected X, got Y".
std::string describe_node(const YAML::Node& node) {
    if (!node.IsDefined() || node.IsNull()) return "nothing";
    if (node.IsSequence()) return "a list";
    if (node.IsMap()) return "a mapping";
    std::string text = node.Scalar();
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return "\"" + text + "\"";
}

/// True for a scalar written without quotes or tag (`5`, not `"5"` or `!!str 5`).
bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

/// Where to point for an element of a list: the element, or the list if yaml-cpp has no position.
YAML::Mark element_mark(const YAML::Node& element, const YAML::Mark& list) {
    return element.IsNull() || element.Mark().is_null() ? list : element.Mark();
}

/// Where each document starts, and where its first node is (the first two documents only).
struct DocumentMarks : YAML::EventHandler {
    struct Document {
        YAML::Mark start;
        YAML::Mark node = YAML::Mark::null_mark();
    };
    std::vector<Document> docs;
    void node_at(const YAML::Mark& m) {
        if (!docs.empty() && docs.back().node.is_null()) docs.back().node = m;
    }
    void OnDocumentStart(const YAML::Mark& m) override { docs.push_back({m}); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& m, YAML::anchor_t) override { node_at(m); }
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { node_at(m); }
    void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { node_at(m); }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        node_at(m);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        node_at(m);
    }
    void OnMapEnd() override {}
};

/// The first two documents of `content` (none for an empty or comment-only
/// file). Throws YAML::Exception on a syntax error.
std::vector<DocumentMarks::Document> first_documents(const std::string& content) {
    std::istringstream in(content);
    YAML::Parser parser(in);
    DocumentMarks marks;
    while (marks.docs.size() < 2 && parser.HandleNextDocument(marks)) {
    }
    return marks.docs;
}

}  // namespace

void YamlSource::fail(const YAML::Mark& mark, std::string key, std::string message) {
    if (error) return;
    error = ConfigError{file, one_based(mark.line), one_based(mark.column), std::move(key), std::move(message)};
}

std::optional<ConfigError> load_yaml_file(const std::string& path, YAML::Node& out) {
    std::error_code ec;
    std::ifstream in(path, std::ios::binary);
    if (!in || std::filesystem::is_directory(path, ec)) return ConfigError{path, 0, 0, "", "cannot open file"};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return ConfigError{path, 0, 0, "", "cannot open file"};
    try {
        // yaml-cpp 0.7's LoadAll never ends on a document that starts with a
        // stray flow indicator (","): each call yields an empty document
        // without consuming it. So the documents are counted first, two at
        // most, and one that begins where the previous one began is an error.
        const std::string content = text.str();
        const auto docs = first_documents(content);
        if (docs.size() > 1) {
            const YAML::Mark mark = docs[1].node.is_null() ? docs[1].start : docs[1].node;
            const bool stuck = docs[1].start.pos == docs[0].start.pos;
            return ConfigError{path, one_based(mark.line), one_based(mark.column), "",
                               stuck ? "invalid YAML: unexpected character at the start of a document"
                                     : "a second YAML document (after '---'): put everything in one"};
        }
        out.reset(docs.empty() ? YAML::Node() : YAML::Load(content));
    } catch (const YAML::Exception& e) {
        return ConfigError{path, one_based(e.mark.line), one_based(e.mark.column), "", "invalid YAML: " + e.msg};
    } catch (const std::exception& e) {
        return ConfigError{path, 0, 0, "", std::string("cannot read file: ") + e.what()};
    }
    return std::nullopt;
}

YAML::Mark locate(const YAML::Node& root, std::string_view key) {
    YAML::Mark best = YAML::Mark::null_mark();
    if (!root.IsDefined() || root.IsNull()) return best;
    best = root.Mark();
    // Walk with reset(): assigning one YAML::Node to another would rewrite the tree.
    YAML::Node node;
    node.reset(root);
    while (!key.empty()) {
        auto dot = key.find('.');
        std::string_view segment = key.substr(0, dot);
        key = dot == std::string_view::npos ? std::string_view{} : key.substr(dot + 1);
        std::string_view name = segment.substr(0, segment.find('['));
        std::string_view indices = segment.substr(name.size());
        if (!name.empty()) {
            if (!node.IsMap()) return best;
            auto it = std::find_if(node.begin(), node.end(), [&](const auto& kv) {
                return kv.first.IsScalar() && kv.first.Scalar() == name;
            });
            if (it == node.end()) return best;
            best = it->second.IsNull() ? it->first.Mark() : it->second.Mark();
            node.reset(it->second);
        }
        while (!indices.empty()) {  // "[1][2]"
            auto close = indices.find(']');
            if (indices.front() != '[' || close == std::string_view::npos) return best;
            std::size_t index = 0;
            auto digits = indices.substr(1, close - 1);
            auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
            if (ec != std::errc{} || ptr != digits.data() + digits.size()) return best;
            if (!node.IsSequence() || index >= node.size()) return best;
            YAML::Node element = node[index];
            best = element_mark(element, best);
            node.reset(element);
            indices = indices.substr(close + 1);
        }
    }
    return best;
}

YamlReader::YamlReader(YamlSource& source, const YAML::Node& node, std::string path, YAML::Mark where)
    : source_(&source), path_(std::move(path)), mark_(where) {
    if (!node.IsDefined() || node.IsNull()) return;
    if (!node.Mark().is_null()) mark_ = node.Mark();
    if (!node.IsMap()) {
        source_->fail(mark_, path_, "expected a mapping (key: value lines), got " + describe_node(node));
        return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
        if (!it->first.IsScalar()) {
            source_->fail(it->first.Mark(), path_, "a key must be a plain name, got " + describe_node(it->first));
            continue;
        }
        const std::string& name = it->first.Scalar();
        auto twin = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
        if (twin != entries_.end()) {
            source_->fail(it->first.Mark(), path_of(name),
                          "duplicate key (first given on line " + std::to_string(one_based(twin->key.Mark().line)) + ")");
            continue;
        }
        entries_.push_back(Entry{name, it->first, it->second, false});
    }
}

bool YamlReader::has(std::string_view key) const {
    return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == key; });
}

std::string YamlReader::path_of(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

YamlReader::Entry* YamlReader::find(std::string_view key) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == key; });
    if (it == entries_.end()) return nullptr;
    it->used = true;
    return &*it;
}

YAML::Mark YamlReader::value_mark(const Entry& entry) {
    // yaml-cpp puts an empty value ("key:") at the next token, often the next line: use the key.
    return entry.value.IsNull() || entry.value.Mark().is_null() ? entry.key.Mark() : entry.value.Mark();
}

std::optional<std::string> YamlReader::scalar_of(const YAML::Node& node, const YAML::Mark& mark,
                                                 const std::string& key, std::string_view expected,
                                                 bool plain_only) {
    if (!node.IsScalar()) {
        source_->fail(mark, key, "expected " + std::string(expected) + ", got " + describe_node(node));
        return std::nullopt;
    }
    if (plain_only && !is_plain(node)) {
        source_->fail(mark, key, "expected " + std::string(expected) + ", got the string " + describe_node(node) +
                                     " (write it without quotes)");
        return std::nullopt;
    }
    return node.Scalar();
}

std::optional<unsigned long long> YamlReader::unsigned_of(const YAML::Node& node, const YAML::Mark& mark,
                                                          const std::string& key, unsigned long long max) {
    constexpr std::string_view expected = "an unsigned integer";
    auto text = scalar_of(node, mark, key, expected, true);
    if (!text) return std::nullopt;
    unsigned long long value = 0;
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, value);
    bool digits_only = !text->empty() && std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits_only || ptr != end) {
        source_->fail(mark, key, "expected " + std::string(expected) + ", got " + describe_node(node));
        return std::nullopt;
    }
    if (ec != std::errc{} || value > max) {
        source_->fail(mark, key, "out of range: " + *text + " (at most " + std::to_string(max) + ")");
        return std::nullopt;
    }
    return value;
}

void YamlReader::read_string(std::string_view key, std::string& out) {
    if (Entry* e = find(key))
        if (auto text = scalar_of(e->value, value_mark(*e), path_of(key), "a string (\"\" for an empty one)", false))
            out = *text;
}

void YamlReader::read_bool(std::string_view key, bool& out) {
    Entry* e = find(key);
    if (!e) return;
    auto text = scalar_of(e->value, value_mark(*e), path_of(key), "true or false", true);
    if (!text) return;
    if (*text == "true" || *text == "True" || *text == "TRUE") {
        out = true;
    } else if (*text == "false" || *text == "False" || *text == "FALSE") {
        out = false;
    } else {
        source_->fail(value_mark(*e), path_of(key), "expected true or false, got " + describe_node(e->value));
    }
}

void YamlReader::read_unsigned(std::string_view key, unsigned& out) {
    if (Entry* e = find(key))
        if (auto value = unsigned_of(e->value, value_mark(*e), path_of(key), std::numeric_limits<unsigned>::max()))
            out = static_cast<unsigned>(*value);
}

void YamlReader::read_unsigned(std::string_view key, std::size_t& out) {
    if (Entry* e = find(key))
        if (auto value = unsigned_of(e->value, value_mark(*e), path_of(key), std::numeric_limits<std::size_t>::max()))
            out = static_cast<std::size_t>(*value);
}

void YamlReader::read_duration(std::string_view key, Duration& out) {
    Entry* e = find(key);
    if (!e) return;
    auto text = scalar_of(e->value, value_mark(*e), path_of(key), "a duration (e.g. 300ms, 15s, 2m)", false);
    if (!text) return;
    if (auto d = parse_duration(*text))
        out = *d;
    else
        source_->fail(value_mark(*e), path_of(key), "bad duration \"" + *text + "\" (expected e.g. 300ms, 15s, 2m)");
}

void YamlReader::read_size(std::string_view key, std::size_t& out) {
    Entry* e = find(key);
    if (!e) return;
    auto text = scalar_of(e->value, value_mark(*e), path_of(key), "a size (e.g. 512, 16KiB, 10MiB)", false);
    if (!text) return;
    if (auto bytes = parse_size(*text))
        out = *bytes;
    else
        source_->fail(value_mark(*e), path_of(key),
                      "bad size \"" + *text + "\" (expected e.g. 512, 16KiB, 10MiB, 1GB)");
}

void YamlReader::read_host_port(std::string_view key, HostPort& out) {
    Entry* e = find(key);
    if (!e) return;
    auto text = scalar_of(e->value, value_mark(*e), path_of(key), "HOST:PORT", false);
    if (!text) return;
    if (auto why = parse_host_port(*text, out))
        source_->fail(value_mark(*e), path_of(key), "bad address \"" + *text + "\": " + *why);
}

template <typename ReadElement>
void YamlReader::read_list(std::string_view key, std::string_view expected, ReadElement&& read_element) {
    Entry* e = find(key);
    if (!e || e->value.IsNull()) return;
    if (!e->value.IsSequence()) {
        source_->fail(value_mark(*e), path_of(key), "expected " + std::string(expected) + ", got " + describe_node(e->value));
        return;
    }
    std::size_t index = 0;
    for (const auto& element : e->value) {
        read_element(element, element_mark(element, value_mark(*e)), path_of(key) + "[" + std::to_string(index) + "]");
        ++index;
    }
}

void YamlReader::read_string_list(std::string_view key, std::vector<std::string>& out) {
    std::vector<std::string> values;
    read_list(key, "a list of strings", [&](const YAML::Node& node, const YAML::Mark& mark, const std::string& path) {
        if (auto text = scalar_of(node, mark, path, "a string", false)) values.push_back(*text);
    });
    if (has(key)) out = std::move(values);
}

void YamlReader::read_unsigned_list(std::string_view key, std::vector<unsigned>& out) {
    std::vector<unsigned> values;
    read_list(key, "a list of unsigned integers", [&](const YAML::Node& node, const YAML::Mark& mark, const std::string& path) {
        if (auto value = unsigned_of(node, mark, path, std::numeric_limits<unsigned>::max()))
            values.push_back(static_cast<unsigned>(*value));
    });
    if (has(key)) out = std::move(values);
}

YamlReader YamlReader::child(std::string_view key) {
    Entry* e = find(key);
    if (!e) return YamlReader(*source_, YAML::Node(), path_of(key), mark_);
    return YamlReader(*source_, e->value, path_of(key), value_mark(*e));
}

std::vector<YamlReader> YamlReader::children(std::string_view key) {
    std::vector<YamlReader> out;
    read_list(key, "a list of mappings (- name: ...)", [&](const YAML::Node& node, const YAML::Mark& mark, const std::string& path) {
        out.emplace_back(*source_, node, path, mark);
    });
    return out;
}

void YamlReader::require(std::string_view key) {
    Entry* e = find(key);
    if (!e) source_->fail(mark_, path_of(key), "required key missing");
}

void YamlReader::fail(std::string_view key, std::string message) {
    Entry* e = find(key);
    source_->fail(e ? value_mark(*e) : mark_, path_of(key), std::move(message));
}

void YamlReader::finish() {
    for (const Entry& e : entries_)
        if (!e.used) {
            source_->fail(e.key.Mark(), path_of(e.name), "unknown key");
            return;
        }
}

}  // namespace cacheproxy::config
